"""Shared by the management API tests: users with each role, their tokens, and clients presenting each
credential (`api(credential)`), talking to the app in process through Django's test client (DRF's APIClient)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from routing.management_api import roles
from routing.models import GatewaySettings
from routing.services import api_key_create, management_token_create

MASTER = "sk-gw-master-api-tests-7d1c9e2b4f"
CREDENTIALS = ("anonymous", "auditor_token", "ops_token", "master_key", "retired_master_key", "session_ops",
               "session_auditor", "no_role_token")


def make_user(username: str, *, role: str | None = None, superuser: bool = False):
    user = get_user_model().objects.create_user(username, password=None, is_staff=True,  # no hashing: fast
                                                is_superuser=superuser)
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def master_key(settings) -> str:
    settings.GATEWAY = {**settings.GATEWAY, "MASTER_KEY": MASTER}
    return MASTER


@pytest.fixture
def ops_user(db):
    return make_user("ops-alice", role=roles.OPS)


@pytest.fixture
def auditor_user(db):
    return make_user("auditor-bob", role=roles.AUDITOR)


@pytest.fixture
def ops_token(ops_user) -> str:
    return management_token_create(user=ops_user, name="ci")[1]


@pytest.fixture
def auditor_token(auditor_user) -> str:
    return management_token_create(user=auditor_user, name="audit-ci")[1]


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def session(user) -> APIClient:
    """A browser's admin session: CSRF is enforced on writes, so the client sends the token like the admin's
    JavaScript would (from the csrftoken cookie set by a page it loaded)."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/")  # sets the csrftoken cookie (the page has a logout form)
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client


@pytest.fixture
def api(db, master_key):
    """api(credential) -> APIClient presenting it (one of CREDENTIALS)."""

    def make(credential: str) -> APIClient:
        if credential == "anonymous":
            return APIClient()
        if credential == "ops_token":
            return bearer(management_token_create(user=make_user("ops-t", role=roles.OPS), name="t")[1])
        if credential == "auditor_token":
            return bearer(management_token_create(user=make_user("aud-t", role=roles.AUDITOR), name="t")[1])
        if credential == "no_role_token":
            return bearer(management_token_create(user=make_user("nobody-t"), name="t")[1])
        if credential == "master_key":
            return bearer(master_key)
        if credential == "retired_master_key":
            api_key_create(name="a usable key")  # retiring needs one
            GatewaySettings.objects.update_or_create(pk=1, defaults={"master_key_enabled": False})
            return bearer(master_key)
        if credential == "session_ops":
            return session(make_user("ops-s", role=roles.OPS))
        if credential == "session_auditor":
            return session(make_user("aud-s", role=roles.AUDITOR))
        raise ValueError(credential)

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The /api/ error shape (routing/management_api/errors.py)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code", "fields"}, error
    assert isinstance(error["message"], str) and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


class World:
    """One of each object, plus spares that may be deleted."""

    def __init__(self):
        from django.utils import timezone

        from routing.models import Deployment, GroupFallback, ModelGroup, ParamPolicy, PolicyRule, RequestLog
        from routing.services import presets_ensure

        self.preset = presets_ensure()["azure-responses"]
        self.group = ModelGroup.objects.create(name="azure-gpt-5.5")
        self.other = ModelGroup.objects.create(name="gpt-4o")
        self.spare_group = ModelGroup.objects.create(name="spare")
        self.deployment = Deployment(group=self.group, name="east", provider="azure",
                                     api_base="https://res.openai.azure.com", upstream_model="gpt-5.5-prod")
        self.deployment.api_key = "sk-upstream-PLAINTEXT-0123456789abcd"
        self.deployment.save()
        self.spare_deployment = Deployment.objects.create(group=self.group, name="mock", provider="mock")
        self.fallback = GroupFallback.objects.create(group=self.group, fallback=self.other)
        self.policy = ParamPolicy.objects.create(name="strict")
        PolicyRule.objects.create(policy=self.policy, action="drop", path="metadata")
        self.spare_policy = ParamPolicy.objects.create(name="unused")
        self.key, _ = api_key_create(name="team-a", allowed_groups=[self.group])
        self.log = RequestLog.objects.create(request_id="req_0123", created_at=timezone.now(), method="POST",
                                             endpoint="responses", path="/v1/responses", status=200,
                                             key_name="team-a", group_name="azure-gpt-5.5", deployment_name="east")


@pytest.fixture
def world(db) -> World:
    return World()
