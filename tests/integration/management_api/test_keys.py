"""Client keys and the settings through /api/: the secret shown once, never readable later; regenerate, revoke;
retiring the master key."""

import hashlib

import pytest

from routing.models import ApiKey
from tests.integration.management_api.support import assert_error, bearer


@pytest.fixture
def ops(api):
    return api("ops_token")


def test_a_new_key_is_shown_once(ops, world):
    created = ops.post("/api/keys/", {"name": "team-b", "allowed_groups": [world.group.pk], "rpm": 60},
                       format="json")
    assert created.status_code == 201, created.content
    assert "no-store" in created["Cache-Control"]
    body = created.json()
    secret = body["key"]
    assert secret.startswith(f"sk-gw-{body['prefix']}-") and body["allowed_groups"] == [world.group.pk]
    row = ApiKey.objects.get(pk=body["id"])
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    for response in (ops.get(f"/api/keys/{row.pk}/"), ops.get("/api/keys/")):
        text = response.content.decode()
        assert secret not in text and row.key_hash not in text and '"key"' not in text


def test_regenerate_and_revoke(ops, world):
    old_hash = world.key.key_hash
    regenerated = ops.post(f"/api/keys/{world.key.pk}/regenerate/")
    assert regenerated.status_code == 200 and "no-store" in regenerated["Cache-Control"]
    world.key.refresh_from_db()
    assert world.key.key_hash == hashlib.sha256(regenerated.json()["key"].encode()).hexdigest() != old_hash
    revoked = ops.post(f"/api/keys/{world.key.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False and "key" not in revoked.json()
    world.key.refresh_from_db()
    assert world.key.is_active is False


@pytest.mark.parametrize("groups", [[999_999], ["1"], [True], list(range(1, 1002))])
def test_allowed_groups_are_checked_and_bounded(ops, groups):
    assert assert_error(ops.post("/api/keys/", {"name": "k", "allowed_groups": groups}, format="json"),
                        400)["param"].startswith("allowed_groups")


def test_the_master_key_retires_only_once_a_usable_key_exists(api, master_key, db):
    master = bearer(master_key)
    refused = master.patch("/api/settings/", {"master_key_enabled": False}, format="json")
    assert "Create an active API key" in assert_error(refused, 400)["message"]
    ops = api("ops_token")
    ops.post("/api/keys/", {"name": "real"}, format="json")
    assert master.patch("/api/settings/", {"master_key_enabled": False}, format="json").json() == {
        "master_key_configured": True, "master_key_enabled": False,
        "updated_at": ops.get("/api/settings/").json()["updated_at"]}
    assert_error(master.get("/api/settings/"), 401)  # retired: refused from the next request on
    assert ops.patch("/api/settings/", {"master_key_enabled": True}, format="json").status_code == 200
    assert master.get("/api/settings/").status_code == 200
