"""routing/admin/keys.py: client keys shown once (never in a cookie), stored hashed, revoked, regenerated;
gateway settings (master key retirement)."""

from routing import keys
from routing.models import ApiKey
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    FULL_KEY,
    group,
    url,
)


def test_api_key_is_generated_shown_once_and_stored_hashed(admin_client, group):
    data = {"name": "ci", "allowed_groups": [group.pk], "is_active": "on", "expires_at_0": "", "expires_at_1": "",
            "rpm": 60, "tpm": "", "max_parallel": ""}
    response = admin_client.post(url(ApiKey, "add"), data, follow=True)
    assert response.status_code == 200
    shown = FULL_KEY.findall(response.content.decode())
    assert len(set(shown)) == 1
    full = shown[0]
    row = ApiKey.objects.get(name="ci")
    assert row.key_hash == keys.hash_key(full)
    assert full.startswith(f"sk-gw-{row.prefix}-")
    assert list(row.allowed_groups.all()) == [group] and row.rpm == 60
    for page in (url(ApiKey, "change", row.pk), url(ApiKey, "changelist")):
        html = admin_client.get(page).content.decode()
        assert full not in html and row.prefix in html


def test_api_key_typed_fields_cannot_set_the_secret(admin_client, db):
    data = {"name": "ci", "is_active": "on", "prefix": "deadbeef", "key_hash": "f" * 64}
    admin_client.post(url(ApiKey, "add"), data)
    row = ApiKey.objects.get()
    assert row.prefix != "deadbeef" and row.key_hash != "f" * 64


def test_revoke_action_deactivates_selected_keys(admin_client, db):
    rows = [ApiKey.objects.create(name=n, prefix=n * 4, key_hash=n * 64) for n in "ab"]
    response = admin_client.post(url(ApiKey, "changelist"),
                                 {"action": "revoke", "_selected_action": [rows[0].pk]}, follow=True)
    assert "Revoked 1 key(s)." in response.content.decode()
    assert dict(ApiKey.objects.values_list("name", "is_active")) == {"a": False, "b": True}


