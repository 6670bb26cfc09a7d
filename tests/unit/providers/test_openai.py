"""routing/providers/openai.py and openai_compatible.py."""

from routing.config.snapshots import DeploymentSnap
from routing.providers import openai, openai_compatible


def dep(**kw) -> DeploymentSnap:
    base = dict(id=1, name="d", group_name="g", provider="openai", api_base="", upstream_model="gpt-4o",
                api_version="", api_key="sk-up")
    return DeploymentSnap(**{**base, **kw})


def test_openai_default_base_and_bearer():
    assert openai.url(dep(), "responses") == "https://api.openai.com/v1/responses"
    assert openai.url(dep(), "responses/r1", "include[]=x") == "https://api.openai.com/v1/responses/r1?include[]=x"
    assert openai.auth_headers(dep()) == {"authorization": "Bearer sk-up"}


def test_compatible_uses_its_base_and_optional_key():
    d = dep(provider="openai_compatible", api_base="http://vllm:8000/v1/", api_key="")
    assert openai_compatible.url(d, "chat/completions") == "http://vllm:8000/v1/chat/completions"
    assert openai_compatible.auth_headers(d) == {}
