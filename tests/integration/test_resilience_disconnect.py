"""A client that goes away: the upstream sees its connection from the gateway closed within a
second (measured on the upstream's side: its handler polls the transport), before the first
byte and mid-stream; the log row says 499 / client_disconnected.

test_stream_relay.py checks the log rows and that the fake's stream handler ends within 2 s
after a mid-stream hang-up; this checks the upstream connection itself, also while the upstream
has not answered yet (a slow reasoning model), for JSON and streaming calls."""

import time

import httpx
import pytest

from routing.models import RequestLog
from tests.integration.resilience_support import post, route, watching_upstream  # noqa: F401 (fixture)
from tests.integration.server import eventually


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_connection_closed_when_client_leaves_before_first_byte(stream, gateway, watching_upstream,
                                                                         make_key):
    upstream = watching_upstream("hang")
    group, (dep,) = route(gateway, [upstream], max_attempts=1, first_byte_timeout=30)
    key = make_key()
    with httpx.Client(base_url=gateway, timeout=httpx.Timeout(5, read=0.4)) as client:
        with pytest.raises(httpx.ReadTimeout):
            post(client, key, group.name, stream=stream)
    left = time.monotonic()  # the client closed its connection on the timeout
    assert upstream.arrived.is_set()

    assert upstream.closed.wait(3), "the gateway kept the upstream call open after its client left"
    assert upstream.closed_at - left < 1.0, f"upstream closed {upstream.closed_at - left:.2f}s after the client left"
    row = eventually(lambda: RequestLog.objects.filter(key_name=key.name).first(), timeout=3)
    assert (row.status, row.client_disconnected, row.error_type, row.stream) == (499, True, "client_disconnected",
                                                                                 stream)


def test_upstream_connection_closed_when_client_leaves_mid_stream(gateway, watching_upstream, make_key, http,
                                                                  wait_for_log):
    upstream = watching_upstream("stream", interval=0.05)
    group, (dep,) = route(gateway, [upstream], max_attempts=1)
    key = make_key(max_parallel=1)
    with http.stream("POST", "/v1/responses", json={"model": group.name, "input": "hi", "stream": True},
                     headers={"Authorization": f"Bearer {key.secret}"}) as response:
        assert response.status_code == 200
        request_id = response.headers["x-gateway-request-id"]
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"\n\n") >= 4:
                break
    left = time.monotonic()
    sent_when_left = upstream.frames_sent

    assert upstream.closed.wait(3), "the gateway kept reading the upstream stream after its client left"
    assert upstream.closed_at - left < 1.0, f"upstream closed {upstream.closed_at - left:.2f}s after the client left"
    assert upstream.frames_sent - sent_when_left <= 20
    row = wait_for_log(request_id)
    assert (row.status, row.client_disconnected, row.error_type) == (499, True, "client_disconnected")
    assert row.response_id == f"resp_watch_{upstream.port}" and row.deployment_id == dep.id
    assert 0 < row.bytes_out
    # The key's only parallel slot was given back: the next request is admitted.
    upstream.mode = "hang"

    def admitted() -> bool:
        with httpx.Client(base_url=gateway, timeout=httpx.Timeout(5, read=0.3)) as client:
            try:
                response = post(client, key, group.name)
            except httpx.ReadTimeout:  # admitted: waiting for the (hanging) upstream
                return True
        assert response.status_code == 429, response.text
        return False

    eventually(admitted, timeout=3, message="the parallel slot of a stream whose client left was never released")
