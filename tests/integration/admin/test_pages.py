"""Every registered admin page renders; secrets cannot be looked up through any admin's URL."""

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from routing.models import (
    ApiKey,
    Deployment,
    GatewaySettings,
    ManagementToken,
    ModelGroup,
    ParamPolicy,
    RequestLog,
    RequestLogQuarantine,
    ResponseAffinity,
)
from routing.services import AZURE_RESPONSES_PRESET, management_token_create
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    SECRET,
    deployment,
    group,
    log_rows,
    url,
)


def test_every_registered_model_has_working_changelist_add_and_change_pages(admin_client, admin_user, deployment,
                                                                             log_rows):
    affinity = ResponseAffinity.objects.create(response_id="resp_abc", deployment_id=deployment.pk,
                                               created_at=timezone.now(), expires_at=timezone.now())
    rows = {ModelGroup: deployment.group, Deployment: deployment, RequestLog: log_rows[0], ResponseAffinity: affinity,
            ApiKey: ApiKey.objects.create(name="ci", prefix="abcd1234", key_hash="0" * 64),
            ParamPolicy: ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET),
            GatewaySettings: GatewaySettings.objects.create(pk=1),
            RequestLogQuarantine: RequestLogQuarantine.objects.create(request_id="req_q", reason="r", raw="[]"),
            ManagementToken: management_token_create(user=admin_user, name="ci")[0]}
    no_add = {RequestLog, ResponseAffinity, GatewaySettings, RequestLogQuarantine, ManagementToken}
    assert {m for m in admin.site._registry if m._meta.app_label == "routing"} == set(rows)
    for model, obj in rows.items():
        changelist = admin_client.get(url(model, "changelist"))
        if model is GatewaySettings:  # one row: its list opens it
            assert changelist.status_code == 302 and changelist["Location"] == url(model, "change", 1)
        else:
            assert changelist.status_code == 200, model
        assert admin_client.get(url(model, "change", obj.pk)).status_code == 200, model
        assert admin_client.get(url(model, "history", obj.pk)).status_code == 200, model
        assert admin_client.get(url(model, "add")).status_code == (403 if model in no_add else 200), model
    assert b"LLM Gateway" in admin_client.get(reverse("admin:index")).content



@pytest.mark.parametrize("lookup", ["api_key_encrypted__startswith=fernet:", "api_key_encrypted=x",
                                    "api_key_encrypted__isnull=False"])
def test_lookups_on_the_encrypted_key_are_refused(admin_client, deployment, lookup):
    response = admin_client.get(url(Deployment, "changelist") + "?" + lookup)
    assert response.status_code in (400, 302)
    if response.status_code == 302:
        assert "e=1" in response["Location"]
    html = response.content.decode()
    assert SECRET not in html and deployment.api_key_encrypted not in html and "east" not in html


@pytest.mark.parametrize(("model", "lookup"), [
    (ModelGroup, "deployments__api_key_encrypted__startswith=fernet:"),
    (ApiKey, "key_hash__startswith=0"),
])
def test_lookups_on_secrets_through_other_admins_are_refused(admin_client, deployment, model, lookup):
    response = admin_client.get(url(model, "changelist") + "?" + lookup)
    assert response.status_code in (400, 302)
    assert "fernet:" not in response.content.decode()


