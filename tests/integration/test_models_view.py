"""GET /v1/models (routing/views.py ModelsView): the groups a key may use, in OpenAI's list shape."""

import openai

from tests.integration.server import assert_openai_error, bearer


def test_key_sees_only_its_groups_master_sees_all(fake_azure, azure_route, make_key, sdk, master_key,
                                                  wait_for_log):
    a, b, c = (azure_route(fake_azure) for _ in range(3))
    limited = make_key(a.group, c.group)
    unlimited = make_key()

    raw = sdk(limited).models.with_raw_response.list()
    listed = raw.parse()
    assert sorted(m.id for m in listed.data) == sorted([a.group.name, c.group.name])
    assert {(m.object, m.owned_by) for m in listed.data} == {("model", "gateway")}
    assert all(isinstance(m.created, int) and m.created > 1_700_000_000 for m in listed.data)
    row = wait_for_log(raw.headers["x-gateway-request-id"])
    assert (row.method, row.endpoint, row.status, row.key_name) == ("GET", "models", 200, limited.name)

    everything = {a.group.name, b.group.name, c.group.name}
    assert {m.id for m in sdk(unlimited).models.list().data} == everything
    assert {m.id for m in sdk(master_key).models.list().data} == everything
    assert fake_azure.received == []  # listing never asks an upstream


def test_models_needs_a_key(http):
    assert_openai_error(http.get("/v1/models"), 401, code="invalid_api_key")
    assert_openai_error(http.get("/v1/models", headers=bearer("wrong")), 401, code="invalid_api_key")


def test_sdk_sees_auth_error(sdk):
    try:
        sdk("sk-gw-00000000-wrongwrongwrongwrongwrongwrongwr").models.list()
    except openai.AuthenticationError as exc:
        assert exc.status_code == 401 and exc.code == "invalid_api_key"
    else:
        raise AssertionError("a wrong key listed models")
