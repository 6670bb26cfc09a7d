"""routing/console/preview.py and policy_pages.preview: what the upstream would receive, from the live engine."""

import orjson
import pytest
from django.urls import reverse

from routing import selectors
from routing.forwarding import upstream_request
from routing.forwarding.upstream_request import Target
from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule
from routing.services import presets_ensure

SECRET = "sk-upstream-PLAINTEXT-0123456789abcd"
PREVIEW = reverse("admin:routing_parampolicy_preview")


@pytest.fixture
def azure(db) -> Deployment:
    group = ModelGroup.objects.create(name="azure-gpt-5.5")
    policy = ParamPolicy.objects.create(name="strict", extends=presets_ensure()["azure-responses"])
    PolicyRule.objects.create(policy=policy, action="drop", path="client_metadata")
    PolicyRule.objects.create(policy=policy, action="reject", path="logit_bias", message="No logit bias here.")
    dep = Deployment(group=group, name="east", provider="azure", api_base="https://res.openai.azure.com",
                     upstream_model="gpt-5.5-prod", policy=policy)
    dep.api_key = SECRET
    dep.save()
    return dep


def post(admin_client, dep, body, *, endpoint="responses", stream="body", query=""):
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return admin_client.post(PREVIEW + query, {"deployment": dep.pk, "endpoint": endpoint, "stream": stream,
                                               "body": text})


def test_preview_shows_url_masked_headers_body_and_each_change_with_its_policy(admin_client, azure):
    body = {"model": "azure-gpt-5.5", "input": "hi", "stream": True, "stream_options": {"include_usage": True},
            "client_metadata": {"a": 1}}
    response = post(admin_client, azure, body)
    result = response.context["result"]
    assert result.url == "https://res.openai.azure.com/openai/v1/responses"
    assert result.headers["api-key"] == "••••abcd" and result.headers["accept"] == "text/event-stream"
    assert orjson.loads(result.body) == {"model": "gpt-5.5-prod", "input": "hi", "stream": True}
    assert [(c["action"], c["path"], c.get("policy")) for c in result.changes] == [
        ("drop", "stream_options", "azure-responses"), ("drop", "client_metadata", "strict"),
        ("rewrite", "model", None)]
    html = response.content.decode()
    assert SECRET not in html and "••••abcd" in html and "azure-responses" in html

    # Exactly what live traffic builds: same URL, headers, bytes and change list.
    snap = selectors.deployment_snap(azure)
    raw = orjson.dumps(body)
    live = upstream_request.build(snap, Target("POST", "responses", "responses", "", raw, body, True), {})
    assert (result.url, result.headers, result.changes) == (live.url, live.masked_headers(), live.changes)
    assert orjson.loads(result.body) == orjson.loads(live.content)


def test_stream_mode_and_endpoint_choose_the_rules_that_apply(admin_client, azure):
    body = {"model": "m", "messages": [], "stream_options": {"include_usage": True}}
    chat = post(admin_client, azure, body, endpoint="chat", stream="stream").context["result"]
    assert "stream_options" in orjson.loads(chat.body)  # the preset's drop is for /v1/responses only
    assert chat.url.endswith("/openai/v1/chat/completions")
    responses = post(admin_client, azure, body, endpoint="responses", stream="non_stream").context["result"]
    assert "stream_options" not in orjson.loads(responses.body)
    assert responses.headers["accept"] == "application/json"


def test_a_reject_rule_shows_the_clients_400(admin_client, azure):
    response = post(admin_client, azure, {"model": "m", "input": "x", "logit_bias": {}})
    assert response.context["result"].rejected.param == "logit_bias"
    assert "No logit bias here." in response.content.decode()


def test_unchanged_bodies_are_the_clients_own_bytes(admin_client, azure):
    azure.upstream_model = ""
    azure.save()
    text = '{"model":"m",   "input":"x"}'
    result = post(admin_client, azure, text).context["result"]
    assert result.changes == [] and result.body_unchanged


@pytest.mark.parametrize(("body", "error"), [("{not json", "Not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_invalid_bodies_are_form_errors(admin_client, azure, body, error):
    response = post(admin_client, azure, body)
    assert response.status_code == 200 and response.context["result"] is None
    assert error in response.content.decode()


def test_a_policy_is_previewed_on_a_deployment_that_does_not_use_it_yet(admin_client, azure):
    other = ParamPolicy.objects.create(name="renamer")
    PolicyRule.objects.create(policy=other, action="rename", path="max_tokens", target="max_output_tokens")
    page = admin_client.get(PREVIEW + f"?policy={other.pk}&deployment={azure.pk}")
    assert "renamer" in page.content.decode()
    result = post(admin_client, azure, {"model": "m", "input": "x", "max_tokens": 5, "client_metadata": {}},
                  query=f"?policy={other.pk}").context["result"]
    assert orjson.loads(result.body) == {"model": "gpt-5.5-prod", "input": "x", "max_output_tokens": 5,
                                         "client_metadata": {}}
    assert admin_client.get(PREVIEW + "?policy=999999").status_code == 404
