"""With its database away, a running gateway keeps answering from its snapshots
(config/route_table.py, api/authentication.py, forwarding/affinity.py): known keys and models
work, unknown keys get 401, unknown models and response ids 404 — never a 500 — and bad keys
cost no database query per request. PostgreSQL only: the outage is a cut TCP relay."""

import httpx
import pytest
from django.db import connection

from tests.integration.conftest import wait_until_served
from tests.integration.dbrelay import relayed_database
from tests.integration.server import GatewayServer, assert_openai_error, bearer, server_database_url

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the outage is a cut TCP relay")


def test_a_running_gateway_answers_from_its_snapshots_while_the_database_is_away(fake_azure, azure_route,
                                                                                 make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    key = make_key(dep.group)
    relay, through = relayed_database(server_database_url())
    server = GatewayServer(database_url=through, workdir=tmp_path, name="outage",
                           env={"GATEWAY_LOG_JOURNAL_DIR": str(tmp_path / "journal")}).start()
    try:
        wait_until_served(server.url, dep.group.name)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            created = http.post("/v1/responses", json={"model": dep.group.name, "input": "x"}, headers=bearer(key))
            assert created.status_code == 200
            relay.cut()
            ok = http.post("/v1/responses", json={"model": dep.group.name, "input": "x"}, headers=bearer(key))
            assert ok.status_code == 200, ok.text
            for _ in range(3):
                assert_openai_error(http.post("/v1/responses", json={"model": dep.group.name, "input": "x"},
                                              headers={"Authorization": "Bearer sk-gw-00000000-unknown"}),
                                    401, code="invalid_api_key")
            assert_openai_error(http.post("/v1/responses", json={"model": "no-such-model", "input": "x"},
                                          headers=bearer(key)), 404, code="model_not_found")
            assert_openai_error(http.get("/v1/responses/resp_never_seen", headers=bearer(key)), 404,
                                code="response_not_found")
            assert http.get(f"/v1/responses/{created.json()['id']}", headers=bearer(key)).status_code == 200
    finally:
        server.stop()
        relay.cut()
    assert '" 500' not in server.log_since(0)  # uvicorn's access log: no request answered 500
