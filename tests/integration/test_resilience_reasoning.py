"""Encrypted reasoning that the chosen deployment cannot decrypt (Codex, store:false: reasoning
produced by another Azure resource) is stripped and the call retried once on the same
deployment; and /v1/responses/compact only goes to deployments that support it."""

import pytest

from tests.integration.resilience_support import (  # noqa: F401 (fixtures)
    _reasoning_fake_server,
    attempts,
    post,
    reasoning_fake,
    route,
    served_by,
)
from tests.integration.server import assert_openai_error, parse_sse

REASONING = {"type": "reasoning", "id": "rs_from_other_resource", "summary": [],
             "encrypted_content": "gAAAAABoZ-encrypted-by-another-resource=="}
USER = {"type": "message", "role": "user", "content": "and now?"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_undecryptable_reasoning_is_stripped_and_retried_once(stream, gateway, reasoning_fake, make_key, http,
                                                              wait_for_log):
    group, _ = route(gateway, [reasoning_fake], max_attempts=1)
    response = post(http, make_key(), group.name, input=[REASONING, USER], store=False, stream=stream,
                    include=["reasoning.encrypted_content"])
    assert response.status_code == 200, response.text
    if stream:
        assert parse_sse(response.text)[-1].event == "response.completed"
    else:
        assert response.json()["status"] == "completed"

    first, second = [r.json for r in reasoning_fake.wait_for(2)]
    assert len(reasoning_fake.received) == 2
    assert first["input"] == [REASONING, USER]
    assert second["input"] == [USER]  # only the reasoning item went; everything else is as the client sent it
    assert {k: v for k, v in first.items() if k != "input"} == {k: v for k, v in second.items() if k != "input"}
    assert second["store"] is False and second["model"] == "gpt-5.5-prod"

    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 400, "encrypted_reasoning_refused; retrying without it"), ("dep-a", 200, "")]
    assert (row.status, row.error_type, row.deployment_name) == (200, "", "dep-a")
    dropped = [c for c in row.policy_changes if c.get("reason") == "reasoning_not_decryptable_by_deployment"]
    assert dropped == [{"action": "drop", "path": "input[type=reasoning].encrypted_content", "count": 1,
                        "reason": "reasoning_not_decryptable_by_deployment"}]
    assert {"action": "rewrite", "path": "model", "from": group.name, "to": "gpt-5.5-prod"} in row.policy_changes


def test_other_400s_with_encrypted_reasoning_are_final(gateway, fake_azure, make_key, http, wait_for_log):
    """Only a refusal of the reasoning itself triggers the strip; any other 400 is the client's answer."""
    group, _ = route(gateway, [fake_azure], max_attempts=2)
    fake_azure.reject_params = {"metadata"}
    response = post(http, make_key(), group.name, input=[REASONING, USER], metadata={"x": "y"})
    assert response.status_code == 400 and "metadata" in response.json()["error"]["message"]
    assert len(fake_azure.received) == 1 and fake_azure.last().json["input"] == [REASONING, USER]
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 400, "")]
    assert not any(c.get("reason") for c in row.policy_changes)


# ------------------------------------------------------------------ /v1/responses/compact


def compact(http, key, model):
    return http.post("/v1/responses/compact", headers={"Authorization": f"Bearer {key.secret}"},
                     json={"model": model, "input": [USER]})


def test_compact_without_a_supporting_deployment_is_refused(gateway, fake_azure, fake_azure_b, make_key, http,
                                                            wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], speaks_compact=False)
    response = compact(http, make_key(), group.name)
    error = assert_openai_error(response, 400, code="unsupported_endpoint", param="model")
    assert group.name in error["message"] and "/v1/responses/compact" in error["message"]
    assert fake_azure.received == [] and fake_azure_b.received == []
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.status, row.endpoint, row.error_type, row.attempts) == (400, "compact", "unsupported_endpoint", [])


def test_compact_goes_only_to_supporting_deployments(gateway, fake_azure, fake_azure_b, make_key, http,
                                                     wait_for_log):
    group, _ = route(gateway, [(fake_azure, {"speaks_compact": False}), fake_azure_b])  # A has priority
    key = make_key()
    for _ in range(3):
        response = compact(http, key, group.name)
        assert response.status_code == 200, response.text
        assert served_by(response) == "dep-b"
    assert fake_azure.received == []
    assert [r.path for r in fake_azure_b.received] == ["/openai/v1/responses/compact"] * 3
    assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-b", 200, "")]
    assert served_by(post(http, key, group.name)) == "dep-a"  # ordinary calls still prefer A
