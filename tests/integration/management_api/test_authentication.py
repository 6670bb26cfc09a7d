"""Credentials on /api/: management tokens (hashed, revocable, expiring, acting as their user), the master key
(as on /v1: refused once retired, nothing when unset), the admin session (CSRF on writes)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from routing.management_api.models import ManagementToken, hash_token
from routing.services import management_token_create, management_tokens_revoke
from tests.integration.management_api.support import assert_error, bearer, make_user


def test_a_token_is_stored_hashed_and_acts_as_its_user(ops_user):
    token, secret = management_token_create(user=ops_user, name="terraform")
    assert secret.startswith(f"gwm_{token.prefix}_")
    row = ManagementToken.objects.get(pk=token.pk)
    assert row.token_hash == hash_token(secret) and secret not in str(row.__dict__)
    assert row.last_used_at is None
    assert bearer(secret).get("/api/groups/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


@pytest.mark.parametrize("spoil", ["revoke", "expire", "deactivate_user", "wrong", "client_key"])
def test_unusable_tokens_are_401(ops_user, spoil):
    token, secret = management_token_create(user=ops_user, name="t")
    if spoil == "revoke":
        assert management_tokens_revoke(token_ids=[token.pk]) == 1
    elif spoil == "expire":
        ManagementToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "deactivate_user":
        ops_user.is_active = False
        ops_user.save()
    elif spoil == "wrong":
        secret = secret[:-2] + "xx"
    elif spoil == "client_key":
        from routing.services import api_key_create

        secret = api_key_create(name="client")[1]  # a /v1 key is not a management credential
    response = bearer(secret).get("/api/groups/")
    assert assert_error(response, 401)["type"] == "authentication_error"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_no_master_key_configured_means_none_works(db, settings):
    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": ""}
    assert_error(bearer("").get("/api/groups/"), 401)
    assert_error(bearer("anything").get("/api/groups/"), 401)


def test_session_writes_need_the_csrf_token(db):
    from tests.integration.management_api.support import session

    client = session(make_user("ops-s", role="ops"))
    assert client.post("/api/groups/", {"name": "with-csrf"}, format="json").status_code == 201
    del client.defaults["HTTP_X_CSRFTOKEN"]
    refused = client.post("/api/groups/", {"name": "without"}, format="json")
    assert "CSRF" in assert_error(refused, 403)["message"]


def test_superusers_are_ops(db):
    token = management_token_create(user=make_user("root", superuser=True), name="t")[1]
    assert bearer(token).post("/api/groups/", {"name": "g"}, format="json").status_code == 201


def test_create_management_token_command(ops_user):
    out, err = StringIO(), StringIO()
    call_command("create_management_token", ops_user.username, "--name", "ci", "--expires-in-days", "30",
                 stdout=out, stderr=err)
    secret = out.getvalue().strip()
    token = ManagementToken.objects.get(token_hash=hash_token(secret))
    assert token.name == "ci" and token.user == ops_user and "role: ops" in err.getvalue()
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert bearer(secret).get("/api/groups/").status_code == 200
    with pytest.raises(CommandError, match="No user"):
        call_command("create_management_token", "nobody", stdout=out, stderr=err)
