"""Route changes made in another process (here: the ORM in the test process, as the admin
or `import_routes` would) reach the running server without a restart (routing/config/route_table.py:
polled every GATEWAY_ROUTE_REFRESH_SECONDS=0.2 here, and re-checked at once on a lookup
miss)."""

import time

from routing.models import ParamPolicy, PolicyRule
from routing.services import presets_ensure
from tests.integration.server import CANARY_MODEL, UPSTREAM_MODEL, bearer, eventually, unique

DEADLINE = 3.0  # "within a few seconds" (design); here the poll interval is 0.2 s


def ask(http, key, model, **extra):
    return http.post("/v1/responses", json={"model": model, "input": "hi", **extra}, headers=bearer(key))


def test_upstream_model_change_goes_live(fake_azure, azure_route, make_key, http):
    dep = azure_route(fake_azure)
    key = make_key()
    assert ask(http, key, dep.group.name).status_code == 200
    assert fake_azure.last().json["model"] == UPSTREAM_MODEL

    dep.upstream_model = CANARY_MODEL
    dep.save()
    changed = time.monotonic()

    def uses_canary():
        assert ask(http, key, dep.group.name).status_code == 200
        return fake_azure.last().json["model"] == CANARY_MODEL

    eventually(uses_canary, timeout=DEADLINE, message="the server kept the old upstream_model")
    assert time.monotonic() - changed < DEADLINE
    for _ in range(3):  # and it stays switched
        assert ask(http, key, dep.group.name).status_code == 200
        assert fake_azure.last().json["model"] == CANARY_MODEL


def test_switch_deployments(fake_azure, fake_azure_b, azure_group, make_key, http):
    a, b = azure_group([fake_azure, (fake_azure_b, {"enabled": False})])
    key = make_key()
    for _ in range(3):
        assert ask(http, key, a.group.name).status_code == 200
    assert len(fake_azure.received) == 3 and fake_azure_b.received == []

    a.enabled = False
    a.save()
    b.enabled = True
    b.save()

    eventually(lambda: ask(http, key, a.group.name).status_code == 200 and fake_azure_b.received,
               timeout=DEADLINE, message="traffic never moved to the newly enabled deployment")
    fake_azure.clear()
    for _ in range(4):
        response = ask(http, key, a.group.name)
        assert response.headers["x-gateway-deployment"] == f"{b.id}:{b.name}"
    assert fake_azure.received == []


def test_group_disabled_then_enabled(fake_azure, azure_route, make_key, http):
    dep = azure_route(fake_azure)
    key = make_key()
    group = dep.group
    group.enabled = False
    group.save()
    eventually(lambda: ask(http, key, group.name).status_code == 404, timeout=DEADLINE)
    group.enabled = True
    group.save()
    eventually(lambda: ask(http, key, group.name).status_code == 200, timeout=DEADLINE)


def test_key_changes_go_live(fake_azure, azure_route, make_key, http):
    a, b = azure_route(fake_azure), azure_route(fake_azure)
    key = make_key(a.group)
    assert ask(http, key, a.group.name).status_code == 200  # a key created a moment ago works at once
    assert ask(http, key, b.group.name).status_code == 404  # a group it may not use looks unknown

    key.row.allowed_groups.add(b.group)
    eventually(lambda: ask(http, key, b.group.name).status_code == 200, timeout=DEADLINE,
               message="the key's new group was never allowed")

    key.row.is_active = False
    key.row.save()
    eventually(lambda: ask(http, key, a.group.name).status_code == 401, timeout=DEADLINE,
               message="a deactivated key kept working")


def test_new_model_works_on_its_first_request(fake_azure, azure_route, make_key, http):
    """routes.py promises: "a route or key created a moment ago works on its first request"
    (a lookup miss re-checks the route version at once). Two models created back to back,
    each used right away, as a client would after `import_routes`."""
    key = make_key()
    first = azure_route(fake_azure, wait=False)
    second = azure_route(fake_azure, wait=False)
    for model in (first.group.name, second.group.name):
        response = ask(http, key, model)
        assert response.status_code == 200, f"just-created model {model}: {response.status_code} {response.text}"


def test_unknown_models_stay_404(make_key, http, wait_for_log):
    key = make_key()
    for _ in range(5):  # each miss may trigger a version re-check; none may turn into something else
        response = ask(http, key, unique("never-created"))
        assert response.status_code == 404
        assert wait_for_log(response.headers["x-gateway-request-id"]).error_type == "model_not_found"


def test_policy_rule_change_goes_live(fake_azure, azure_route, make_key, http):
    policy = ParamPolicy.objects.create(name=unique("team-policy"), extends=presets_ensure()["azure-responses"])
    dep = azure_route(fake_azure, policy=policy)
    key = make_key()
    assert ask(http, key, dep.group.name, metadata={"team": "a"}).status_code == 200
    assert fake_azure.last().json["metadata"] == {"team": "a"}

    PolicyRule.objects.create(policy=policy, action="drop", path="metadata")

    def dropped():
        assert ask(http, key, dep.group.name, metadata={"team": "a"}).status_code == 200
        return "metadata" not in fake_azure.last().json

    eventually(dropped, timeout=DEADLINE, message="the new policy rule never applied")


def test_a_retired_master_key_is_refused_everywhere_and_can_come_back(fake_azure, azure_route, master_key, http):
    from routing.models import GatewaySettings

    dep = azure_route(fake_azure)

    def ask_as_master() -> int:
        return http.post("/v1/responses", json={"model": dep.group.name, "input": "x"},
                         headers=bearer(master_key)).status_code

    assert ask_as_master() == 200
    GatewaySettings.objects.update_or_create(pk=1, defaults={"master_key_enabled": False})  # as the admin saves it
    eventually(lambda: ask_as_master() == 401, timeout=DEADLINE, message="the retired master key still works")
    GatewaySettings.objects.update_or_create(pk=1, defaults={"master_key_enabled": True})
    eventually(lambda: ask_as_master() == 200, timeout=DEADLINE)
