"""routing/admin/routes.py: deployments (write-only upstream key, provider checks, health, bulk actions, clone)
and model groups (inline deployments, fallbacks)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from routing.models import Deployment, GroupFallback, ModelGroup, ParamPolicy, RequestLog
from routing.services import AZURE_RESPONSES_PRESET
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    GROUP_RESILIENCE,
    SECRET,
    deployment,
    deployment_post,
    formset,
    group,
    url,
)


def test_adding_a_deployment_stores_the_key_encrypted(admin_client, group):
    response = admin_client.post(url(Deployment, "add"), deployment_post(group, new_api_key=SECRET))
    assert response.status_code == 302, response.content
    dep = Deployment.objects.get(group=group, name="east")
    assert dep.api_key_encrypted.startswith("fernet:")
    assert SECRET not in dep.api_key_encrypted
    assert dep.api_key == SECRET


@pytest.mark.parametrize("typed", ["ключ-from-a-doc", "sk-abc def", "sk-abc\ndef", "sk-\u00e9t\u00e9"])
def test_a_key_that_cannot_travel_in_a_header_is_refused(admin_client, deployment, typed):
    ciphertext = deployment.api_key_encrypted
    response = admin_client.post(url(Deployment, "change", deployment.pk),
                                 deployment_post(deployment.group, new_api_key=typed))
    assert response.status_code == 200 and "visible ASCII" in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.api_key_encrypted == ciphertext


@pytest.mark.parametrize(("field", "value"), [("first_byte_timeout", -1), ("total_timeout", 0),
                                            ("connect_timeout", 10 ** 9), ("idle_timeout", -0.5)])
def test_timeouts_that_would_fail_or_never_end_every_call_are_refused(admin_client, deployment, field, value):
    response = admin_client.post(url(Deployment, "change", deployment.pk),
                                 deployment_post(deployment.group, **{field: value}))
    assert response.status_code == 200 and "Enter a number of seconds above 0" in response.content.decode()
    deployment.refresh_from_db()
    assert getattr(deployment, field) > 0


def test_pages_never_contain_the_key_or_its_ciphertext(admin_client, deployment):
    pages = [url(Deployment, "change", deployment.pk), url(Deployment, "changelist"),
             url(ModelGroup, "change", deployment.group.pk), url(Deployment, "changelist") + "?q=east"]
    for page in pages:
        html = admin_client.get(page).content.decode()
        assert SECRET not in html and deployment.api_key_encrypted not in html, page
        assert "fernet:" not in html, page
    changelist = admin_client.get(url(Deployment, "changelist")).content.decode()
    assert "••••abcd" in changelist


def test_saving_without_a_key_keeps_the_stored_key(admin_client, deployment):
    ciphertext = deployment.api_key_encrypted
    response = admin_client.post(url(Deployment, "change", deployment.pk),
                                 deployment_post(deployment.group, weight=5, policy=""))
    assert response.status_code == 302, response.content
    deployment.refresh_from_db()
    assert deployment.weight == 5
    assert deployment.api_key_encrypted == ciphertext and deployment.api_key == SECRET


def test_a_new_key_replaces_and_clear_removes_the_stored_key(admin_client, deployment):
    change = url(Deployment, "change", deployment.pk)
    admin_client.post(change, deployment_post(deployment.group, new_api_key="sk-rotated-key-9876"))
    deployment.refresh_from_db()
    assert deployment.api_key == "sk-rotated-key-9876"
    both = admin_client.post(change, deployment_post(deployment.group, new_api_key="x" * 20, clear_api_key="on"))
    assert both.status_code == 200 and "not both" in both.content.decode()
    admin_client.post(change, deployment_post(deployment.group, clear_api_key="on"))
    deployment.refresh_from_db()
    assert deployment.api_key_encrypted == "" and deployment.api_key == ""


def test_new_azure_deployment_defaults_to_the_azure_responses_policy(admin_client, group):
    admin_client.post(url(Deployment, "add"), deployment_post(group, name="azure"))
    admin_client.post(url(Deployment, "add"), deployment_post(group, name="openai", provider="openai",
                                                              api_base="", upstream_model=""))
    custom = ParamPolicy.objects.create(name="custom")
    admin_client.post(url(Deployment, "add"), deployment_post(group, name="chosen", policy=custom.pk))
    policies = dict(Deployment.objects.values_list("name", "policy__name"))
    assert policies == {"azure": AZURE_RESPONSES_PRESET, "openai": None, "chosen": "custom"}


def test_an_existing_deployment_may_have_no_policy(admin_client, deployment):
    admin_client.post(url(Deployment, "change", deployment.pk), deployment_post(deployment.group, policy=""))
    deployment.refresh_from_db()
    assert deployment.policy is None


@pytest.mark.parametrize(("provider", "blank", "errors"), [
    ("azure", ("api_base", "upstream_model"), 2),
    ("openai_compatible", ("api_base",), 1),
    ("openai", ("api_base", "upstream_model"), 0),
    ("mock", ("api_base", "upstream_model"), 0),
])
def test_provider_required_fields(admin_client, group, provider, blank, errors):
    data = deployment_post(group, provider=provider, **dict.fromkeys(blank, ""))
    response = admin_client.post(url(Deployment, "add"), data)
    assert response.content.decode().count(f"Required for provider &#x27;{provider}&#x27;") == errors
    assert Deployment.objects.exists() is (errors == 0)


def test_deployments_are_edited_inline_under_their_group(admin_client, db):
    row = {"name": "east", "provider": "azure", "api_base": "https://res.openai.azure.com",
           "upstream_model": "gpt-5.5-prod", "new_api_key": SECRET, "weight": 1, "priority": 0, "enabled": "on"}
    data = {"name": "azure-gpt-5.5", "strategy": "weighted", **GROUP_RESILIENCE, "enabled": "on",
            **formset("deployments", [row]), **formset("fallback_links", [])}
    assert admin_client.post(url(ModelGroup, "add"), data).status_code == 302
    dep = Deployment.objects.get()
    assert dep.api_key == SECRET and dep.api_key_encrypted.startswith("fernet:")
    assert dep.policy.name == AZURE_RESPONSES_PRESET

    edit = {**data, **formset("deployments", [{**row, "id": dep.pk, "new_api_key": "", "weight": 3}], initial=1)}
    assert admin_client.post(url(ModelGroup, "change", dep.group.pk), edit).status_code == 302
    dep.refresh_from_db()
    assert dep.weight == 3 and dep.api_key == SECRET
    html = admin_client.get(url(ModelGroup, "change", dep.group.pk)).content.decode()
    assert SECRET not in html and "••••" in html
    assert "1/1" in admin_client.get(url(ModelGroup, "changelist")).content.decode()

    delete = {**data, **formset("deployments", [{**row, "id": dep.pk, "new_api_key": "", "DELETE": "on"}], initial=1)}
    assert admin_client.post(url(ModelGroup, "change", dep.group.pk), delete).status_code == 302
    assert not Deployment.objects.exists()


def test_fallback_loops_are_refused_and_health_is_shown(admin_client, db):
    a = ModelGroup.objects.create(name="a")
    b = ModelGroup.objects.create(name="b")
    GroupFallback.objects.create(group=b, fallback=a)
    data = {"name": "a", "strategy": "weighted", **GROUP_RESILIENCE, "enabled": "on",
            **formset("deployments", []), **formset("fallback_links", [{"position": 0, "fallback": b.pk}])}
    response = admin_client.post(url(ModelGroup, "change", a.pk), data)
    assert response.status_code == 200 and "lead back to this group" in response.content.decode()
    assert not GroupFallback.objects.filter(group=a).exists()
    c = ModelGroup.objects.create(name="c")
    data["fallback_links-0-fallback"] = c.pk
    assert admin_client.post(url(ModelGroup, "change", a.pk), data).status_code == 302
    assert list(GroupFallback.objects.filter(group=a).values_list("fallback__name", flat=True)) == ["c"]


def test_deployment_health_is_visible(admin_client, deployment):
    from routing.resilience.breaker import breaker

    for _ in range(3):
        breaker.failure(deployment.pk, "connect_error", threshold=3, window=60, cooldown=30)
    try:
        page = admin_client.get(url(Deployment, "change", deployment.pk)).content.decode()
        assert "cooling" in page and "connect_error" in page
        assert "cooling" in admin_client.get(url(Deployment, "changelist")).content.decode()
    finally:
        breaker.health.pop(deployment.pk, None)


# --- health, bulk actions, clone, rejected parameters -------------------------------------------------------------

@pytest.mark.parametrize(("health", "tone", "label"), [
    ({"state": "healthy", "last_error": "", "last_error_at": None, "cooled_until": None}, "gw-ok", "healthy"),
    ({"state": "auth_failed", "last_error": "HTTP 401", "last_error_at": "2026-11-25 14:03:07 UTC",
      "cooled_until": None}, "gw-bad", "auth failed"),
    ({"state": "probing", "last_error": "HTTP 503", "last_error_at": "2026-11-25 14:03:07 UTC",
      "cooled_until": None}, "gw-warn", "probing"),
])
def test_health_is_a_coloured_state_with_its_reason_and_time(admin_client, deployment, monkeypatch, health, tone,
                                                              label):
    monkeypatch.setattr("routing.admin.routes.deployment_health", lambda dep_id: health)
    listing = admin_client.get(url(Deployment, "changelist")).content.decode()
    badge = re.search(r'<span class="gw-badge ([\w-]+)" title="([^"]*)">([^<]*)</span>', listing)
    assert badge.groups()[0] == tone and badge.groups()[2] == label
    if health["last_error"]:
        assert health["last_error"] in badge.groups()[1] and "14:03:07" in badge.groups()[1]
    detail = admin_client.get(url(Deployment, "change", deployment.pk)).content.decode()
    assert f'gw-badge {tone}' in detail and (health["last_error"] or "—") in detail


def test_bulk_enable_and_disable_record_who_did_it(admin_client, admin_user, group):
    deps = [Deployment.objects.create(group=group, name=n, provider="mock") for n in ("a", "b", "c")]
    response = admin_client.post(url(Deployment, "changelist"), {"action": "disable_selected",
                                                                  "_selected_action": [deps[0].pk, deps[1].pk]},
                                 follow=True)
    assert "Disabled 2 deployment(s)." in response.content.decode()
    assert dict(Deployment.objects.values_list("name", "enabled")) == {"a": False, "b": False, "c": True}
    admin_client.post(url(Deployment, "changelist"), {"action": "enable_selected", "_selected_action": [deps[0].pk]})
    assert Deployment.objects.get(name="a").enabled is True
    latest = Deployment.history.filter(id=deps[0].pk).first()
    assert latest.enabled is True and latest.history_user == admin_user


def test_clone_makes_a_disabled_copy_with_the_same_key_and_policy(admin_client, deployment):
    policy = ParamPolicy.objects.create(name="custom")
    deployment.policy = policy
    deployment.save()
    assert admin_client.get(url(Deployment, "change", deployment.pk) + "clone/").status_code == 405
    response = admin_client.post(reverse("admin:routing_deployment_clone", args=[deployment.pk]))
    clone = Deployment.objects.exclude(pk=deployment.pk).get()
    assert response.status_code == 302 and response["Location"] == url(Deployment, "change", clone.pk)
    assert (clone.name, clone.enabled, clone.group_id, clone.policy_id) == ("east (copy)", False, deployment.group_id,
                                                                            policy.pk)
    assert clone.api_key == SECRET and clone.api_base == deployment.api_base
    admin_client.post(reverse("admin:routing_deployment_clone", args=[deployment.pk]))
    assert Deployment.objects.filter(name="east (copy 2)").exists()


def test_rejected_parameters_are_listed_on_the_deployment_page(admin_client, deployment):
    now = timezone.now()
    for minutes, rid in ((30, "req_old"), (20, "req_mid"), (10, "req_new")):
        RequestLog.objects.create(request_id=rid, created_at=now - timedelta(minutes=minutes), method="POST",
                                  endpoint="responses", path="/v1/responses", status=400, upstream_status=400,
                                  deployment_id=deployment.pk, deployment_name="east", rejected_param="client_metadata")
    RequestLog.objects.create(request_id="req_other", created_at=now, method="POST", endpoint="responses",
                              path="/v1/responses", status=400, deployment_id=deployment.pk + 1,
                              deployment_name="west", rejected_param="client_metadata")
    html = admin_client.get(url(Deployment, "change", deployment.pk)).content.decode()
    section = html[html.index('id="rejected-params"'):]
    assert "<code>client_metadata</code>" in section and "<td>3</td>" in section
    assert (now - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S") in section
    assert "req_new" in section and "req_old" not in section and "req_other" not in section
    assert reverse("admin:routing_deployment_drop_param", args=[deployment.pk]) + "?param=client_metadata" in section


def test_clones_of_long_names_stay_within_the_column(admin_client, group):
    """PostgreSQL refuses values longer than the column (SQLite would store them): the copy's name is cut to fit."""
    dep = Deployment.objects.create(group=group, name="n" * 200, provider="mock")
    for expected_suffix in (" (copy)", " (copy 2)"):
        admin_client.post(reverse("admin:routing_deployment_clone", args=[dep.pk]))
        assert Deployment.objects.filter(name="n" * (200 - len(expected_suffix)) + expected_suffix).exists()
