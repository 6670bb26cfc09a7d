"""routing/console/deployment_pages.py: "add a drop rule" for a rejected parameter, previewed first.
(The Test action runs against a live server and fake upstream: tests/integration/test_probe.py.)"""

import orjson
import pytest
from django.urls import reverse
from django.utils import timezone

from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule, RequestLog
from routing.services import presets_ensure


@pytest.fixture
def deployment(db) -> Deployment:
    group = ModelGroup.objects.create(name="azure-gpt-5.5")
    dep = Deployment(group=group, name="east", provider="azure", api_base="https://res.openai.azure.com",
                     upstream_model="gpt-5.5-prod", policy=presets_ensure()["azure-responses"])
    dep.api_key = "sk-upstream-0123456789abcd"
    dep.save()
    RequestLog.objects.create(request_id="req_rejected", created_at=timezone.now(), method="POST", endpoint="chat",
                              path="/v1/chat/completions", status=400, upstream_status=400, deployment_id=dep.pk,
                              deployment_name="east", rejected_param="reasoning.summary")
    return dep


def drop_url(dep, param="reasoning.summary") -> str:
    return reverse("admin:routing_deployment_drop_param", args=[dep.pk]) + f"?param={param}"


def test_the_fix_is_previewed_before_anything_changes(admin_client, deployment):
    page = admin_client.get(drop_url(deployment))
    before, after = page.context["before"], page.context["after"]
    assert orjson.loads(before.body)["reasoning"] == {"summary": "example"}
    assert "reasoning" not in orjson.loads(after.body)
    assert ("drop", "reasoning.summary") in [(c["action"], c["path"]) for c in after.changes]
    assert after.url.endswith("/chat/completions")  # the endpoint the rejected request used
    assert page.context["creates_policy"] is True and "built-in preset" in page.content.decode()
    assert ParamPolicy.objects.count() == 1 and PolicyRule.objects.count() == 1  # nothing written by GET


def test_a_builtin_preset_is_extended_not_edited(admin_client, deployment):
    preset = deployment.policy
    response = admin_client.post(drop_url(deployment), {"param": "reasoning.summary"})
    deployment.refresh_from_db()
    created = deployment.policy
    assert response["Location"] == reverse("admin:routing_parampolicy_change", args=[created.pk])
    assert created.extends == preset and not created.builtin and created.name == "east params"
    assert list(created.rules.values_list("action", "path", "endpoint")) == [("drop", "reasoning.summary", "chat")]
    assert list(preset.rules.values_list("path", flat=True)) == ["stream_options"]


def test_an_own_policy_gets_the_rule_appended(admin_client, deployment):
    own = ParamPolicy.objects.create(name="mine")
    PolicyRule.objects.create(policy=own, position=4, action="set", path="store", value=False)
    deployment.policy = own
    deployment.save()
    admin_client.post(drop_url(deployment), {"param": "reasoning.summary"})
    deployment.refresh_from_db()
    assert deployment.policy == own
    assert list(own.rules.order_by("position").values_list("action", "path", "position")) == [
        ("set", "store", 4), ("drop", "reasoning.summary", 5)]


@pytest.mark.parametrize("param", ["", "a..b", "x%00y", "p" * 201])
def test_bad_parameter_paths_are_refused(admin_client, deployment, param):
    assert admin_client.get(drop_url(deployment, param)).status_code == 404
