"""routing/forwarding/probe.py through the admin's Test action on the live server: the real provider, policy and
client path to a fake Azure upstream, no failover, one audited log row."""

import html
import re

import pytest

from tests.integration.admin_session import login, make_superuser, post_form


@pytest.fixture
def admin_http(gateway):
    client = login(gateway, *make_superuser())
    yield client
    client.close()


def test_the_test_action_calls_the_upstream_and_shows_its_answer(admin_http, azure_route, fake_azure, wait_for_log):
    dep = azure_route(fake_azure)
    page = post_form(admin_http, f"/admin/routing/deployment/{dep.pk}/test/")
    assert page.status_code == 200, page.text[:2000]
    assert re.search(r'id="gw-test-status">200<', page.text)
    sent = fake_azure.last()
    assert sent.path == "/openai/v1/responses" and sent.headers["api-key"] == "upstream-secret"
    assert sent.json == {"model": "gpt-5.5-prod", "input": "ping", "max_output_tokens": 16}
    answer = html.unescape(re.search(r'id="gw-test-answer">(.*?)</pre>', page.text, re.DOTALL).group(1))
    assert '"object":"response"' in answer.replace(" ", "")
    request_id = re.search(r"<code>(req_[0-9a-f]+)</code>", page.text).group(1)
    row = wait_for_log(request_id)
    assert (row.key_name, row.group_name, row.deployment_id, row.status) == ("admin-test", dep.group.name, dep.pk, 200)
    assert row.policy_changes == [{"action": "rewrite", "path": "model", "from": dep.group.name, "to": "gpt-5.5-prod"}]


def test_a_wrong_upstream_key_shows_the_401_and_marks_the_deployment(admin_http, azure_route, fake_azure,
                                                                     wait_for_log):
    dep = azure_route(fake_azure, api_key="typo-in-the-key")
    page = post_form(admin_http, f"/admin/routing/deployment/{dep.pk}/test/")
    assert re.search(r'id="gw-test-status">502<', page.text)  # a client gets 502: the gateway's key is wrong
    assert re.search(r'id="gw-test-upstream-status">401<', page.text) and "upstream_auth_failed" in page.text
    request_id = re.search(r"<code>(req_[0-9a-f]+)</code>", page.text).group(1)
    assert wait_for_log(request_id).attempts[-1]["status"] == 401
    state = re.search(r'field-health_state.*?<span class="gw-badge (gw-\w+)"[^>]*>([^<]*)<',
                      admin_http.get(f"/admin/routing/deployment/{dep.pk}/change/").text, re.DOTALL)
    assert state.groups() == ("gw-bad", "auth failed")


def test_an_unreachable_upstream_is_a_502_with_its_reason(admin_http, azure_route, fake_azure, wait_for_log):
    from tests.integration.server import free_port

    dep = azure_route(None, base=f"http://127.0.0.1:{free_port()}")
    page = post_form(admin_http, f"/admin/routing/deployment/{dep.pk}/test/")
    assert re.search(r'id="gw-test-status">502<', page.text)
    request_id = re.search(r"<code>(req_[0-9a-f]+)</code>", page.text).group(1)
    row = wait_for_log(request_id)
    assert row.status == 502 and row.key_name == "admin-test" and row.error_type


def test_a_disabled_deployment_can_be_tested_and_a_get_changes_nothing(admin_http, azure_route, fake_azure):
    dep = azure_route(fake_azure)
    dep.enabled = False
    dep.save()
    assert admin_http.get(f"/admin/routing/deployment/{dep.pk}/test/").status_code == 200
    assert fake_azure.received == []
    page = post_form(admin_http, f"/admin/routing/deployment/{dep.pk}/test/",
                     {"body": '{"model": "x", "input": "custom", "max_output_tokens": 20}'})
    assert re.search(r'id="gw-test-status">200<', page.text)
    assert fake_azure.last().json["input"] == "custom"


async def test_the_probe_caps_the_deployments_timeouts(monkeypatch):
    """A person waits on the Test page: a 600 s first-byte timeout becomes 30 s (the rest of the call is real)."""
    from routing.config.snapshots import DeploymentSnap
    from routing.forwarding import probe

    seen = {}

    async def fake_call(call, dep, snapshot, target, forwarded):
        seen.update(dep=dep, body=target.body)
        raise probe.GatewayError(504, "timed out", code="upstream_timeout")

    async def no_table():
        return None

    monkeypatch.setattr(probe, "call_deployment", fake_call)
    monkeypatch.setattr(probe.route_table.table, "get", no_table)
    monkeypatch.setattr("routing.forwarding.call.writer.enqueue", lambda record: None)
    dep = DeploymentSnap(id=1, name="d", group_name="g", provider="azure", api_base="https://x", upstream_model="m",
                         api_version="", api_key="k", connect_timeout=2.0, first_byte_timeout=600.0,
                         idle_timeout=300.0, total_timeout=1800.0)
    result = await probe.probe_deployment(dep)
    assert (seen["dep"].connect_timeout, seen["dep"].first_byte_timeout, seen["dep"].idle_timeout,
            seen["dep"].total_timeout) == (2.0, 30.0, 30.0, 60.0)
    assert seen["body"] == {"model": "g", "input": "ping", "max_output_tokens": 16}
    assert (result.status, result.upstream_status, result.error_type) == (504, None, "upstream_timeout")
