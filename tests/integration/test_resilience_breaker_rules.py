"""routing/resilience/breaker.py's two rules through the real server: the last usable deployment
of a group is never cooled into a gateway-made 503, and a request's own retries count as one
failure toward a cooldown (the attempt loop in routing/forwarding/attempts.py passes
`peers=` and `request_id=` to `breaker.failure`)."""


from tests.integration.resilience_support import attempts, post, route


def test_a_single_deployment_group_keeps_reaching_its_upstream(gateway, fake_azure, make_key, http, wait_for_log):
    group, (a,) = route(gateway, [fake_azure], max_attempts=3, cooldown_failures=2, cooldown_seconds=30)
    key = make_key()
    fake_azure.fail_status = 500
    for _ in range(3):  # 9 upstream 500s in a row
        response = post(http, key, group.name)
        assert response.status_code == 500, response.text  # the upstream's answer, not the gateway's 503
    fake_azure.fail_status = None
    response = post(http, key, group.name)
    assert response.status_code == 200, response.text
    assert attempts(wait_for_log(response.headers["x-gateway-request-id"]))[0][:2] == ("dep-a", 200)


def test_one_requests_retries_count_once(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    # A then B then A then B: each deployment fails twice within ONE request.
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], max_attempts=4, cooldown_failures=2,
                          cooldown_seconds=30)
    key = make_key()
    fake_azure.fail_status = fake_azure_b.fail_status = 500
    first = post(http, key, group.name)
    assert first.status_code == 500
    assert [x[0] for x in attempts(wait_for_log(first.headers["x-gateway-request-id"]))] == [
        "dep-a", "dep-b", "dep-a", "dep-b"]
    fake_azure.fail_status = fake_azure_b.fail_status = None
    second = post(http, key, group.name)
    assert second.status_code == 200
    # One failed request is one failure of A (threshold 2): A is not cooling, so priority picks it.
    assert attempts(wait_for_log(second.headers["x-gateway-request-id"]))[0][:2] == ("dep-a", 200)
