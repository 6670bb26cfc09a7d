"""routing/admin.py through Django's test client, logged in as a superuser (pytest-django `admin_client`)."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from routing import keys
from routing.models import (
    ApiKey,
    Deployment,
    GroupFallback,
    ModelGroup,
    ParamPolicy,
    RequestLog,
    RequestLogQuarantine,
    ResponseAffinity,
)
from routing.services import AZURE_RESPONSES_PRESET

SECRET = "sk-upstream-PLAINTEXT-0123456789abcd"
FULL_KEY = re.compile(r"sk-gw-[0-9a-f]{8}-[A-Za-z0-9_-]{32}")


def url(model, view: str, *args) -> str:
    return reverse(f"admin:routing_{model._meta.model_name}_{view}", args=args)


def deployment_post(group: ModelGroup, **overrides) -> dict:
    data = {
        "group": group.pk, "name": "east", "provider": "azure", "api_base": "https://res.openai.azure.com",
        "upstream_model": "gpt-5.5-prod", "api_version": "", "new_api_key": "", "weight": 1, "priority": 0,
        "rpm": "", "tpm": "", "connect_timeout": 5, "first_byte_timeout": 600, "idle_timeout": 300,
        "total_timeout": 1800, "speaks_compact": "unknown", "policy": "", "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def formset(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


GROUP_RESILIENCE = {"max_attempts": 2, "retry_on_status": "429,500,502,503,504", "cooldown_failures": 3,
                    "cooldown_window": 60, "cooldown_seconds": 30}


@pytest.fixture
def group(db) -> ModelGroup:
    return ModelGroup.objects.create(name="azure-gpt-5.5")


@pytest.fixture
def deployment(group) -> Deployment:
    dep = Deployment(group=group, name="east", provider="azure", api_base="https://res.openai.azure.com",
                     upstream_model="gpt-5.5-prod")
    dep.api_key = SECRET
    dep.save()
    return dep


@pytest.fixture
def log_rows(db) -> list[RequestLog]:
    now = timezone.now()
    common = {"method": "POST", "path": "/v1/responses", "endpoint": "responses", "key_name": "ci"}
    return [
        RequestLog.objects.create(request_id="req_ok", created_at=now, status=200, group_name="azure-gpt-5.5",
                                  deployment_name="east", stream=True, response_id="resp_abc", total_tokens=42,
                                  policy_changes=[{"action": "drop", "path": "stream_options",
                                                   "policy": "azure-responses"}],
                                  attempts=[{"deployment": "east", "status": 200}], **common),
        RequestLog.objects.create(request_id="req_fail", created_at=now - timedelta(minutes=1), status=502,
                                  group_name="gpt-4o", deployment_name="west", **common),
    ]


# --- every page renders ----------------------------------------------------------------------------------------

def test_every_registered_model_has_working_changelist_add_and_change_pages(admin_client, deployment, log_rows):
    affinity = ResponseAffinity.objects.create(response_id="resp_abc", deployment_id=deployment.pk,
                                               created_at=timezone.now(), expires_at=timezone.now())
    rows = {ModelGroup: deployment.group, Deployment: deployment, RequestLog: log_rows[0], ResponseAffinity: affinity,
            ApiKey: ApiKey.objects.create(name="ci", prefix="abcd1234", key_hash="0" * 64),
            ParamPolicy: ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET),
            RequestLogQuarantine: RequestLogQuarantine.objects.create(request_id="req_q", reason="r", raw="[]")}
    read_only = {RequestLog, ResponseAffinity, RequestLogQuarantine}
    assert {m for m in admin.site._registry if m._meta.app_label == "routing"} == set(rows)
    for model, obj in rows.items():
        assert admin_client.get(url(model, "changelist")).status_code == 200, model
        assert admin_client.get(url(model, "change", obj.pk)).status_code == 200, model
        assert admin_client.get(url(model, "add")).status_code == (403 if model in read_only else 200), model
    assert b"LLM Gateway" in admin_client.get(reverse("admin:index")).content


# --- deployments: write-only upstream key ---------------------------------------------------------------------

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


# --- policies: rules as rows ------------------------------------------------------------------------------------

def policy_post(rules: list[dict], **fields) -> dict:
    defaults = {"endpoint": "any", "stream": "any", "position": 0, "enabled": "on"}
    return {"name": "strict", "description": "", "extends": "", **fields,
            **formset("rules", [{**defaults, **rule} for rule in rules])}


def test_policy_rules_are_added_as_rows(admin_client, db):
    rules = [{"action": "drop", "path": "stream_options.include_usage", "endpoint": "responses"},
             {"action": "rename", "path": "max_tokens", "target": "max_output_tokens", "position": 1},
             {"action": "set", "path": "store", "value": "false", "position": 2}]
    preset = ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET)
    response = admin_client.post(url(ParamPolicy, "add"), policy_post(rules, extends=preset.pk))
    assert response.status_code == 302, response.content
    policy = ParamPolicy.objects.get(name="strict")
    assert policy.extends == preset
    assert list(policy.rules.values_list("action", "path", "target", "value")) == [
        ("drop", "stream_options.include_usage", "", None), ("rename", "max_tokens", "max_output_tokens", None),
        ("set", "store", "", False)]


@pytest.mark.parametrize(("rule", "message"), [
    ({"action": "rename", "path": "max_tokens"}, "Rename needs a target path."),
    ({"action": "drop", "path": ""}, "A path is required."),
    ({"action": "explode", "path": "x"}, "Select a valid choice."),
    ({"action": "drop", "path": "a..b"}, "Empty segment in dotted path."),
    ({"action": "rename", "path": "a", "target": "b..c"}, "Empty segment in target path"),
    ({"action": "allow_only", "path": "model,,input"}, "Empty segment in key list"),
])
def test_invalid_policy_rules_show_errors_and_save_nothing(admin_client, db, rule, message):
    response = admin_client.post(url(ParamPolicy, "add"), policy_post([rule]))
    assert response.status_code == 200
    html = response.content.decode().replace("&#x27;", "'")
    assert message in html
    assert html.count(message) == 1  # reported once, not by both the form and the model
    assert not ParamPolicy.objects.filter(name="strict").exists()


def test_policies_cannot_extend_each_other_in_a_loop(admin_client, db):
    base = ParamPolicy.objects.create(name="base")
    child = ParamPolicy.objects.create(name="child", extends=base)
    response = admin_client.post(url(ParamPolicy, "change", base.pk), policy_post([], name="base", extends=child.pk))
    assert "in a loop" in response.content.decode()
    base.refresh_from_db()
    assert base.extends is None


def test_builtin_preset_shows_a_note_and_usage(admin_client, deployment):
    preset = ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET)
    deployment.policy = preset
    deployment.save()
    html = admin_client.get(url(ParamPolicy, "change", preset.pk)).content.decode()
    assert "Built-in preset" in html and "1 deployment" in html
    assert "stream_options" in html  # its rule is an editable row
    assert "1 deployment" in admin_client.get(url(ParamPolicy, "changelist")).content.decode()
    custom = ParamPolicy.objects.create(name="custom")
    assert "Built-in preset" not in admin_client.get(url(ParamPolicy, "change", custom.pk)).content.decode()


# --- client keys ------------------------------------------------------------------------------------------------

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


# --- request logs: read-only, filterable ------------------------------------------------------------------------

def test_request_log_is_read_only(admin_client, log_rows):
    row = log_rows[0]
    assert admin_client.get(url(RequestLog, "add")).status_code == 403
    assert admin_client.post(url(RequestLog, "change", row.pk), {"status": 500}).status_code == 403
    assert admin_client.post(url(RequestLog, "delete", row.pk), {"post": "yes"}).status_code == 403
    html = admin_client.get(url(RequestLog, "change", row.pk)).content.decode()
    assert "<pre>[\n  {\n    &quot;action&quot;: &quot;drop&quot;" in html
    assert "stream_options" in html and "Save" not in html
    row.refresh_from_db()
    assert row.status == 200


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"req_ok", "req_fail"}),
    ("?status=200", {"req_ok"}),
    ("?status=5xx", {"req_fail"}),
    ("?status=2xx", {"req_ok"}),
    ("?group_name=gpt-4o", {"req_fail"}),
    ("?deployment_name=east", {"req_ok"}),
    ("?key_name=ci", {"req_ok", "req_fail"}),
    ("?stream__exact=1", {"req_ok"}),
    ("?client_disconnected__exact=0", {"req_ok", "req_fail"}),
    ("?endpoint=chat", set()),
    ("?q=req_fail", {"req_fail"}),
    ("?q=resp_abc", {"req_ok"}),
    ("?q=req", set()),  # exact match only: index-friendly on big tables
])
def test_request_log_filters_and_search(admin_client, log_rows, query, expected):
    response = admin_client.get(url(RequestLog, "changelist") + query)
    assert response.status_code == 200
    assert {row.request_id for row in response.context["cl"].result_list} == expected


def test_response_affinity_search(admin_client, db):
    now = timezone.now()
    for rid in ("resp_1", "resp_2"):
        ResponseAffinity.objects.create(response_id=rid, deployment_id=1, created_at=now, expires_at=now)
    response = admin_client.get(url(ResponseAffinity, "changelist") + "?q=resp_2")
    assert [r.response_id for r in response.context["cl"].result_list] == ["resp_2"]
    assert admin_client.get(url(ResponseAffinity, "add")).status_code == 403


# --- secrets are not filterable ---------------------------------------------------------------------------------

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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate exists on PostgreSQL only")
def test_unfiltered_log_list_counts_from_the_planner_estimate_on_postgresql(admin_client, log_rows, monkeypatch):
    from routing.admin import EstimatedCountPaginator

    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE routing_requestlog")  # the estimate is now 2 rows
    RequestLog.objects.create(request_id="req_late", created_at=timezone.now(), method="GET", endpoint="models",
                              path="/v1/models", status=200)
    unfiltered = admin_client.get(url(RequestLog, "changelist")).context["cl"]
    filtered = admin_client.get(url(RequestLog, "changelist") + "?status=2xx").context["cl"]
    assert unfiltered.result_count == 2  # the estimate, stale by one row: no COUNT(*) ran
    assert filtered.result_count == 2  # req_ok + req_late, counted exactly


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
