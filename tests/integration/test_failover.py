"""Failover in routing/forwarding/attempts.py through the real server: a retryable upstream answer or a
connection failure moves on to the next deployment before anything reached the client;
nothing is retried once the stream has started."""

from tests.integration.server import bearer, free_port, parse_sse


def attempts(row):
    return [(a["deployment_id"], a["status"], a["error"]) for a in row.attempts]


def test_retryable_status_fails_over(fake_azure, fake_azure_b, azure_group, make_key, http, wait_for_log):
    a, b = azure_group([(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority")
    fake_azure.fail_status = 503
    response = http.post("/v1/responses", headers=bearer(make_key()), json={
        "model": a.group.name, "input": "hi", "stream": True, "stream_options": {"include_usage": True}})

    assert response.status_code == 200
    assert parse_sse(response.text)[-1].event == "response.completed"
    assert response.headers["x-gateway-deployment"] == f"{b.id}:{b.name}"
    assert fake_azure.last().json == fake_azure_b.last().json  # the same upstream body to both
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [(a.id, 503, ""), (b.id, 200, "")]
    assert (row.status, row.deployment_id, row.total_tokens) == (200, b.id, 6)
    assert [c["action"] for c in row.policy_changes] == ["drop", "rewrite"]  # once, not per attempt


def test_unreachable_deployment_fails_over(fake_azure_b, azure_group, make_key, http, wait_for_log):
    a, b = azure_group([(None, {"priority": 0, "base": f"http://127.0.0.1:{free_port()}"}),
                        (fake_azure_b, {"priority": 1})], strategy="priority")
    response = http.post("/v1/responses", json={"model": a.group.name, "input": "hi"}, headers=bearer(make_key()))
    assert response.status_code == 200, response.text
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [(a.id, None, "connect_error"), (b.id, 200, "")]


def test_client_error_is_final(fake_azure, fake_azure_b, azure_group, make_key, http):
    a, _ = azure_group([(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority")
    fake_azure.fail_status = 400
    response = http.post("/v1/responses", json={"model": a.group.name, "input": "hi"}, headers=bearer(make_key()))
    assert response.status_code == 400
    assert fake_azure_b.received == []


def test_no_retry_after_the_first_byte(fake_azure, fake_azure_b, azure_group, make_key, http, wait_for_log):
    a, _ = azure_group([(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority")
    fake_azure.drop_after_events = 3
    response = http.post("/v1/responses", json={"model": a.group.name, "input": "hi", "stream": True},
                         headers=bearer(make_key()))
    assert [e.event for e in parse_sse(response.text)][-2:] == ["error", "response.failed"]
    assert fake_azure_b.received == [] and len(fake_azure.received) == 1
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [(a.id, 200, "")] and row.error_type == "upstream_disconnected"
