"""The RequestLog row the server writes for each call (found by x-gateway-request-id):
usage from the upstream's own data, stream flag, names, status, ttfb and the policy audit."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.server import UPSTREAM_MODEL, parse_sse

DROP_STREAM_OPTIONS = {"action": "drop", "path": "stream_options", "policy": "azure-responses"}


def rewrite(group: str) -> dict:
    return {"action": "rewrite", "path": "model", "from": group, "to": UPSTREAM_MODEL}


def test_non_stream_row(fake_azure, azure_route, make_key, sdk, wait_for_log):
    dep = azure_route(fake_azure)
    key = make_key()

    raw = sdk(key).responses.with_raw_response.create(model=dep.group.name, input="one two three four")
    response = raw.parse()
    row = wait_for_log(raw.headers["x-gateway-request-id"])

    assert row.request_id == raw.headers["x-gateway-request-id"]
    assert (row.method, row.endpoint, row.path) == ("POST", "responses", "/v1/responses")
    assert (row.status, row.upstream_status, row.stream) == (200, 200, False)
    assert (row.key_id, row.key_name) == (key.row.id, key.name)
    assert (row.group_name, row.deployment_id, row.deployment_name, row.provider) == (
        dep.group.name, dep.id, dep.name, "azure")
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (4, 5, 9)
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
        response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens)
    assert (row.cached_tokens, row.reasoning_tokens) == (0, 0)
    assert row.response_id == response.id
    assert row.policy_changes == [rewrite(dep.group.name)]  # no stream_options sent: no drop entry
    assert [(a["deployment_id"], a["status"]) for a in row.attempts] == [(dep.id, 200)]
    assert row.latency_ms > 0 and row.overhead_ms >= 0 and 0 < row.ttfb_ms <= row.latency_ms
    assert row.bytes_out == len(raw.content)
    assert (row.error_type, row.client_disconnected) == ("", False)


@pytest.mark.parametrize("with_stream_options", [True, False], ids=["stream_options", "plain"])
def test_stream_row(with_stream_options, fake_azure, azure_route, make_key, sdk, wait_for_log):
    dep = azure_route(fake_azure)
    key = make_key()
    extra = {"stream_options": {"include_usage": True}} if with_stream_options else None

    with sdk(key).responses.with_streaming_response.create(model=dep.group.name, input="a b", stream=True,
                                                            extra_body=extra) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        request_id = raw.headers["x-gateway-request-id"]
        body = raw.read().decode()
    events = parse_sse(body)
    completed = events[-1].json()
    row = wait_for_log(request_id)

    assert events[-1].event == "response.completed"
    assert (row.status, row.upstream_status, row.stream) == (200, 200, True)
    assert (row.key_name, row.group_name, row.deployment_name) == (key.name, dep.group.name, dep.name)
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (2, 5, 7)
    usage = completed["response"]["usage"]
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
        usage["input_tokens"], usage["output_tokens"], usage["total_tokens"])
    assert row.response_id == completed["response"]["id"]
    assert row.ttfb_ms is not None and 0 < row.ttfb_ms <= row.latency_ms
    assert row.bytes_out == len(body.encode())
    expected = [DROP_STREAM_OPTIONS, rewrite(dep.group.name)] if with_stream_options else [rewrite(dep.group.name)]
    assert row.policy_changes == expected
    assert "stream_options" not in fake_azure.last().json
    assert (row.error_type, row.client_disconnected) == ("", False)


def test_every_request_gets_its_own_row(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure)
    key = make_key()
    ids = []
    for i in range(5):
        response = http.post("/v1/responses", json={"model": dep.group.name, "input": f"n{i}", "stream": i % 2 == 0},
                             headers={"Authorization": f"Bearer {key.secret}"})
        assert response.status_code == 200
        ids.append(response.headers["x-gateway-request-id"])
    assert len(set(ids)) == 5
    rows = [wait_for_log(i) for i in ids]
    assert [r.stream for r in rows] == [True, False, True, False, True]
    assert {r.key_name for r in rows} == {key.name}


def test_concurrent_requests_keep_their_own_rows(fake_azure, azure_route, make_key, http, wait_for_log):
    """16 requests at once (half streaming), each with a different input size: every row has
    the usage of its own request, nothing mixed up between concurrent calls."""
    dep = azure_route(fake_azure)
    key = make_key()
    fake_azure.event_delay = 0.02

    def call(n: int):
        body = {"model": dep.group.name, "input": " ".join(["w"] * n), "stream": n % 2 == 0}
        with httpx.Client(base_url=http.base_url, timeout=20) as client:
            response = client.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {key.secret}"})
        assert response.status_code == 200, response.text
        return n, response.headers["x-gateway-request-id"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(1, 17)))
    for n, request_id in results:
        row = wait_for_log(request_id)
        assert (row.input_tokens, row.output_tokens, row.total_tokens, row.stream) == (n, 5, n + 5, n % 2 == 0)
    assert sorted(len(r.json["input"].split()) for r in fake_azure.received) == list(range(1, 17))
