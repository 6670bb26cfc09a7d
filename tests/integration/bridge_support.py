"""Fixtures for the Chat bridge tests: a chat-only upstream and routes to it.

- `fake_vllm`: a FakeUpstream in OpenAI mode that speaks only Chat Completions (its Responses routes
  answer 404 `{"detail": "Not Found"}`, as vLLM does), strict about unknown parameters, knowing the
  model "qwen3" and the key VLLM_KEY.
- `vllm_route(fake, policy_rules=(...), **deployment fields)`: a new group with one `openai_compatible`
  deployment on the fake (capabilities left to the provider's defaults: chat only), and optionally a
  policy made of `(action, path, endpoint)` rules; waits until the server serves it.
- `policy(name, *rules)`: a ParamPolicy with those rules.
"""

from __future__ import annotations

import httpx
import pytest
from django.db import transaction

from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule
from tests.fakes.upstream import FakeUpstream
from tests.integration.conftest import wait_until_served
from tests.integration.server import unique

VLLM_KEY = "vllm-secret"
VLLM_MODEL = "qwen3"
ANSWER = "Hello from the fake upstream"  # the fake's chat text for its default 5 deltas


@pytest.fixture(scope="session")
def _fake_vllm_server():
    fake = FakeUpstream("openai", api_key=VLLM_KEY, deployments=[VLLM_MODEL]).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_vllm(_fake_vllm_server) -> FakeUpstream:
    fake = _fake_vllm_server
    fake.reset()
    fake.speaks_responses = False
    yield fake
    fake.reset()


def make_policy(*rules: tuple[str, str, str]) -> ParamPolicy:
    pol = ParamPolicy.objects.create(name=unique("bridge-policy"))
    for position, (action, path, endpoint) in enumerate(rules):
        PolicyRule.objects.create(policy=pol, position=position, action=action, path=path, endpoint=endpoint)
    return pol


@pytest.fixture
def vllm_route(gateway):
    def make(fake: FakeUpstream, *, policy_rules=(), group: ModelGroup | None = None, wait: bool = True,
             **fields) -> Deployment:
        with transaction.atomic():
            row = group or ModelGroup.objects.create(name=unique("qwen"), max_attempts=2)
            dep = Deployment(group=row, name=unique("vllm"), provider="openai_compatible", api_base=fake.openai_base,
                             upstream_model=VLLM_MODEL, policy=make_policy(*policy_rules) if policy_rules else None,
                             **fields)
            dep.api_key = VLLM_KEY
            dep.save()
        if wait:
            wait_until_served(gateway, row.name)
        return dep

    return make


class BodyRecorder:
    """httpx event hook: the exact bodies the SDK sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> None:
        self.bodies.append(request.read())


@pytest.fixture
def recorded(sdk):
    def make(key):
        recorder = BodyRecorder()
        return sdk(key, http_client=httpx.Client(event_hooks={"request": [recorder]})), recorder

    return make


def chat_calls(fake: FakeUpstream) -> list:
    return [r for r in fake.received if r.path.endswith("/chat/completions")]
