"""routing/admin/keys.py: client keys shown once (never in a cookie), stored hashed, revoked, regenerated;
gateway settings (master key retirement)."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from routing import keys, selectors
from routing.models import ApiKey, GatewaySettings
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




# --- the one-time page, regenerate, expiry, the master key --------------------------------------------------------

def add_key(admin_client, **fields):
    data = {"name": "ci", "is_active": "on", "expires_at_0": "", "expires_at_1": "", "rpm": "", "tpm": "",
            "max_parallel": "", **fields}
    return admin_client.post(url(ApiKey, "add"), data)


def test_the_one_time_key_page_is_the_add_response_and_no_cookie_carries_the_key(admin_client, db):
    response = add_key(admin_client)
    assert response.status_code == 200  # rendered by the add view itself: no redirect, no message
    full = FULL_KEY.findall(response.content.decode())[0]
    assert "no-store" in response["Cache-Control"]
    assert 'data-copy="#gw-full-key"' in response.content.decode()
    assert "messages" not in response.cookies
    assert all(full not in morsel.value for morsel in admin_client.cookies.values())
    session = admin_client.session
    assert all(full not in str(value) for value in session.values())
    assert full not in admin_client.get(url(ApiKey, "changelist")).content.decode()


def test_regenerate_replaces_the_secret_and_shows_it_once(admin_client, db):
    full = FULL_KEY.findall(add_key(admin_client).content.decode())[0]
    row = ApiKey.objects.get()
    regenerate = reverse("admin:routing_apikey_regenerate", args=[row.pk])
    assert "Regenerate" in admin_client.get(regenerate).content.decode()
    assert ApiKey.objects.get().key_hash == keys.hash_key(full)  # GET changes nothing
    response = admin_client.post(regenerate)
    fresh = FULL_KEY.findall(response.content.decode())[0]
    row.refresh_from_db()
    assert fresh != full and row.key_hash == keys.hash_key(fresh) and fresh.startswith(f"sk-gw-{row.prefix}-")
    assert "no-store" in response["Cache-Control"] and "messages" not in response.cookies
    assert row.name == "ci" and row.is_active


def test_key_states_show_expiry(admin_client, db):
    now = timezone.now()
    ApiKey.objects.create(name="old", prefix="aaaa0001", key_hash="1" * 64, expires_at=now - timedelta(days=1))
    ApiKey.objects.create(name="soon", prefix="aaaa0002", key_hash="2" * 64, expires_at=now + timedelta(days=1))
    ApiKey.objects.create(name="off", prefix="aaaa0003", key_hash="3" * 64, is_active=False)
    html = admin_client.get(url(ApiKey, "changelist")).content.decode()
    assert re.search(r'gw-bad" title="expired [\d-]+ [\d:]+">expired<', html)
    assert re.search(r'gw-ok" title="expires [\d-]+ [\d:]+">active<', html)
    assert 'gw-off" title="">revoked<' in html


def test_the_master_key_is_retired_only_once_a_real_key_exists(admin_client, db, settings):
    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": "sk-gw-master-x"}
    banner = admin_client.get(url(ApiKey, "changelist")).content.decode()
    assert "Bootstrap master key" in banner and "accepted" in banner
    assert admin_client.get(url(GatewaySettings, "changelist"))["Location"] == url(GatewaySettings, "change", 1)
    refused = admin_client.post(url(GatewaySettings, "change", 1), {})  # unchecked box: retire
    assert refused.status_code == 200 and "Create an active API key before retiring" in refused.content.decode()
    assert selectors.master_key_enabled() is True

    add_key(admin_client)
    assert admin_client.post(url(GatewaySettings, "change", 1), {}).status_code == 302
    assert selectors.master_key_enabled() is False
    assert "retired" in admin_client.get(url(ApiKey, "changelist")).content.decode()
    assert admin_client.post(url(GatewaySettings, "change", 1), {"master_key_enabled": "on"}).status_code == 302
    assert selectors.master_key_enabled() is True
