"""Groups, deployments and fallbacks through /api/: the admin's rules, the write-only upstream key, the route
version every gateway process polls, and the config history."""

import pytest
from django.forms.models import model_to_dict

from routing.forms import DeploymentForm
from routing.models import Deployment, GroupFallback, ModelGroup, RouteVersion
from tests.integration.management_api.support import assert_error, bearer

SECRET = "sk-upstream-NEW-SECRET-9876543210wxyz"


@pytest.fixture
def ops(api):
    return api("ops_token")


def test_deployment_key_is_write_only_encrypted_and_hinted_to_ops_only(api, ops, world):
    created = ops.post("/api/deployments/", {"group": world.group.pk, "name": "west", "provider": "azure",
                                             "api_base": "west.openai.azure.com", "upstream_model": "gpt-5.5-prod",
                                             "api_key": SECRET}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert SECRET not in created.content.decode() and "api_key" not in body
    assert body["api_key_set"] is True and body["api_key_hint"] == "••••wxyz"
    assert body["api_base"] == "https://west.openai.azure.com"  # the admin form's normalisation
    assert body["policy"] == world.preset.pk  # a new Azure deployment gets the azure-responses preset
    row = Deployment.objects.get(pk=body["id"])
    assert SECRET not in row.api_key_encrypted and row.api_key == SECRET

    seen_by_auditor = api("auditor_token").get(f"/api/deployments/{row.pk}/").json()
    assert seen_by_auditor["api_key_set"] is True and seen_by_auditor["api_key_hint"] is None

    assert ops.patch(f"/api/deployments/{row.pk}/", {"weight": 5}, format="json").status_code == 200
    row.refresh_from_db()
    assert row.api_key == SECRET and row.weight == 5  # absent key: kept

    both = ops.patch(f"/api/deployments/{row.pk}/", {"api_key": "x" * 20, "clear_api_key": True}, format="json")
    assert assert_error(both, 400)["param"] == "clear_api_key"
    cleared = ops.patch(f"/api/deployments/{row.pk}/", {"clear_api_key": True}, format="json").json()
    assert cleared["api_key_set"] is False and cleared["api_key_hint"] is None
    assert Deployment.objects.get(pk=row.pk).api_key_encrypted == ""


def test_deployment_errors_are_the_admin_forms(ops, world):
    payload = {"group": world.group.pk, "name": "west", "provider": "azure", "api_base": "", "upstream_model": ""}
    error = assert_error(ops.post("/api/deployments/", payload, format="json"), 400, "invalid")
    form = DeploymentForm(data={**model_to_dict(Deployment()), **payload, "policy": "", "speaks_responses": "unknown",
                                "speaks_chat": "unknown", "speaks_compact": "unknown",
                                "chat_reasoning_effort": "unknown", "chat_stream_usage": "unknown"})
    assert not form.is_valid()
    assert error["fields"] == {name: list(messages) for name, messages in form.errors.items()}
    assert set(error["fields"]) == {"api_base", "upstream_model"}


def test_deployment_key_with_a_line_break_is_refused(ops, world):
    response = ops.patch(f"/api/deployments/{world.deployment.pk}/", {"api_key": "abc\ndef"}, format="json")
    assert assert_error(response, 400)["param"] == "api_key"


def test_writes_bump_the_route_version(ops, world, django_capture_on_commit_callbacks):
    before = RouteVersion.objects.get(pk=1).version
    with django_capture_on_commit_callbacks(execute=True):
        assert ops.patch(f"/api/deployments/{world.deployment.pk}/", {"enabled": False},
                         format="json").status_code == 200
    assert RouteVersion.objects.get(pk=1).version > before


def test_history_names_the_tokens_user_and_the_credential(api, ops_user, ops_token, world, master_key):
    assert bearer(ops_token).patch(f"/api/groups/{world.group.pk}/", {"description": "main"},
                                   format="json").status_code == 200
    record = ModelGroup.history.filter(id=world.group.pk).latest("history_date")
    assert record.description == "main" and record.history_type == "~"
    assert record.history_user == ops_user and record.history_change_reason == "api: token ci"

    assert bearer(master_key).delete(f"/api/groups/{world.spare_group.pk}/").status_code == 204
    record = ModelGroup.history.filter(id=world.spare_group.pk).latest("history_date")
    assert record.history_type == "-" and record.history_user is None
    assert record.history_change_reason == "api: master key"


def test_group_rules_are_the_models(ops, world):
    response = ops.patch(f"/api/groups/{world.group.pk}/", {"retry_on_status": "429,abc"}, format="json")
    assert assert_error(response, 400)["param"] == "retry_on_status"
    duplicate = ops.post("/api/groups/", {"name": world.other.name}, format="json")
    assert assert_error(duplicate, 400)["param"] == "name"


def test_seconds_out_of_range_are_refused(ops, world):
    for path, field, value in [(f"/api/groups/{world.group.pk}/", "cooldown_seconds", -30),
                               (f"/api/groups/{world.group.pk}/", "cooldown_window", 0),
                               (f"/api/deployments/{world.deployment.pk}/", "first_byte_timeout", -1),
                               (f"/api/deployments/{world.deployment.pk}/", "total_timeout", 1e12)]:
        assert assert_error(ops.patch(path, {field: value}, format="json"), 400)["param"] == field
    world.group.refresh_from_db()
    world.deployment.refresh_from_db()
    assert world.group.cooldown_seconds >= 0 and world.deployment.first_byte_timeout > 0


@pytest.mark.parametrize("name", ["nul\x00byte", "x" * 201])
def test_bounded_input(ops, name):
    assert assert_error(ops.post("/api/groups/", {"name": name}, format="json"), 400)["param"] == "name"
    assert not ModelGroup.objects.filter(name__startswith=name[:3]).exists()


def test_fallback_loops_are_refused(ops, world):
    # world: group -> other
    loop = ops.post("/api/fallbacks/", {"group": world.other.pk, "fallback": world.group.pk}, format="json")
    assert assert_error(loop, 400)["param"] == "fallback"
    itself = ops.post("/api/fallbacks/", {"group": world.other.pk, "fallback": world.other.pk}, format="json")
    assert assert_error(itself, 400)["param"] == "fallback"
    chain = ops.post("/api/fallbacks/", {"group": world.other.pk, "fallback": world.spare_group.pk}, format="json")
    assert chain.status_code == 201
    closing = ops.post("/api/fallbacks/", {"group": world.spare_group.pk, "fallback": world.group.pk}, format="json")
    assert assert_error(closing, 400)["param"] == "fallback"
    # Moving the one link so it no longer closes a loop is fine.
    moved = ops.patch(f"/api/fallbacks/{world.fallback.pk}/", {"fallback": world.spare_group.pk}, format="json")
    assert moved.status_code == 200
    assert GroupFallback.objects.filter(group=world.spare_group).count() == 0


def test_filters_and_ordering(api, world):
    auditor = api("auditor_token")
    names = [d["name"] for d in auditor.get("/api/deployments/", {"group": world.group.pk,
                                                                 "ordering": "-name"}).json()["results"]]
    assert names == ["mock", "east"]
    assert [d["name"] for d in auditor.get("/api/deployments/", {"provider": "mock"}).json()["results"]] == ["mock"]
    assert auditor.get("/api/groups/", {"enabled": "true", "name": "spare"}).json()["count"] == 1
    assert_error(auditor.get("/api/groups/", {"enabled": "maybe"}), 400)
    assert_error(auditor.get("/api/deployments/", {"group": "x"}), 400)
    assert_error(auditor.get("/api/groups/", {"page_size": "0"}), 400)
    assert_error(auditor.get("/api/groups/", {"page": "9"}), 404)
