"""routing/providers/azure.py: both URL generations, api-key auth."""

from routing.config.snapshots import DeploymentSnap
from routing.providers import azure


def dep(**kw) -> DeploymentSnap:
    base = dict(id=1, name="d", group_name="g", provider="azure", api_base="https://res.openai.azure.com",
                upstream_model="gpt-5.5-prod", api_version="", api_key="k3y")
    return DeploymentSnap(**{**base, **kw})


def test_v1_form_without_api_version():
    assert azure.url(dep(), "responses") == "https://res.openai.azure.com/openai/v1/responses"
    assert azure.url(dep(), "chat/completions") == "https://res.openai.azure.com/openai/v1/chat/completions"


def test_versioned_form():
    d = dep(api_version="2025-04-01-preview")
    assert azure.url(d, "responses") == "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    assert azure.url(d, "responses/resp_1/input_items", "limit=5") == (
        "https://res.openai.azure.com/openai/responses/resp_1/input_items?api-version=2025-04-01-preview&limit=5")
    assert azure.url(d, "chat/completions") == (
        "https://res.openai.azure.com/openai/deployments/gpt-5.5-prod/chat/completions?api-version=2025-04-01-preview")


def test_base_pasted_with_openai_suffix():
    assert azure.url(dep(api_base="https://res.openai.azure.com/openai/v1/"), "responses") == (
        "https://res.openai.azure.com/openai/v1/responses")
    assert azure.url(dep(api_base="https://res.openai.azure.com/openai"), "responses") == (
        "https://res.openai.azure.com/openai/v1/responses")


def test_query_on_v1_form():
    assert azure.url(dep(), "responses/resp_1", "stream=true") == (
        "https://res.openai.azure.com/openai/v1/responses/resp_1?stream=true")


def test_auth_header_is_api_key():
    assert azure.auth_headers(dep()) == {"api-key": "k3y"}
    assert azure.auth_headers(dep(api_key="")) == {}
