"""Who may do what, for every endpoint of the schema and every kind of caller.

- anonymous, a retired master key: 401 with `WWW-Authenticate: Bearer realm="api"`;
- an auditor (token or admin session): reads 200, writes 403;
- a user with neither role: 403;
- ops (token, admin session with CSRF), the master key: everything.
`test_every_operation_is_covered` keeps the table in step with the schema."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.integration.management_api.support import CREDENTIALS, assert_error

READ, WRITE = "read", "write"

# (method, schema path, kind, success status, body); {x} names an attribute of World.
OPERATIONS = [
    ("get", "/api/groups/", READ, 200, None),
    ("post", "/api/groups/", WRITE, 201, {"name": "new-group"}),
    ("get", "/api/groups/{group}/", READ, 200, None),
    ("put", "/api/groups/{group}/", WRITE, 200, {"name": "renamed", "strategy": "priority"}),
    ("patch", "/api/groups/{group}/", WRITE, 200, {"description": "main"}),
    ("delete", "/api/groups/{spare_group}/", WRITE, 204, None),
    ("get", "/api/deployments/", READ, 200, None),
    ("post", "/api/deployments/", WRITE, 201, {"group": "{group}", "name": "d2", "provider": "mock"}),
    ("get", "/api/deployments/{deployment}/", READ, 200, None),
    ("put", "/api/deployments/{spare_deployment}/", WRITE, 200, {"group": "{group}", "name": "m2", "provider": "mock"}),
    ("patch", "/api/deployments/{deployment}/", WRITE, 200, {"weight": 3}),
    ("delete", "/api/deployments/{spare_deployment}/", WRITE, 204, None),
    ("get", "/api/fallbacks/", READ, 200, None),
    ("post", "/api/fallbacks/", WRITE, 201, {"group": "{other}", "fallback": "{spare_group}"}),
    ("get", "/api/fallbacks/{fallback}/", READ, 200, None),
    ("put", "/api/fallbacks/{fallback}/", WRITE, 200, {"group": "{group}", "fallback": "{spare_group}"}),
    ("patch", "/api/fallbacks/{fallback}/", WRITE, 200, {"position": 2}),
    ("delete", "/api/fallbacks/{fallback}/", WRITE, 204, None),
    ("get", "/api/policies/", READ, 200, None),
    ("post", "/api/policies/", WRITE, 201, {"name": "p2", "rules": [{"action": "drop", "path": "user"}]}),
    ("get", "/api/policies/{policy}/", READ, 200, None),
    ("put", "/api/policies/{policy}/", WRITE, 200, {"name": "strict2", "rules": []}),
    ("patch", "/api/policies/{policy}/", WRITE, 200, {"description": "tight"}),
    ("delete", "/api/policies/{spare_policy}/", WRITE, 204, None),
    ("post", "/api/policies/{preset}/copy/", WRITE, 201, None),
    ("get", "/api/keys/", READ, 200, None),
    ("post", "/api/keys/", WRITE, 201, {"name": "team-b"}),
    ("get", "/api/keys/{key}/", READ, 200, None),
    ("put", "/api/keys/{key}/", WRITE, 200, {"name": "team-a2", "allowed_groups": []}),
    ("patch", "/api/keys/{key}/", WRITE, 200, {"rpm": 60}),
    ("delete", "/api/keys/{key}/", WRITE, 204, None),
    ("post", "/api/keys/{key}/regenerate/", WRITE, 200, None),
    ("post", "/api/keys/{key}/revoke/", WRITE, 200, None),
    ("get", "/api/logs/", READ, 200, None),
    ("get", "/api/logs/{log}/", READ, 200, None),
    ("get", "/api/settings/", READ, 200, None),
    ("patch", "/api/settings/", WRITE, 200, {"master_key_enabled": True}),
]
SCHEMA_PARAMS = {"{group}": "{id}", "{spare_group}": "{id}", "{deployment}": "{id}", "{spare_deployment}": "{id}",
                 "{fallback}": "{id}", "{policy}": "{id}", "{spare_policy}": "{id}", "{preset}": "{id}",
                 "{key}": "{id}", "{log}": "{request_id}"}


def _schema_path(path: str) -> str:
    for ours, theirs in SCHEMA_PARAMS.items():
        path = path.replace(ours, theirs)
    return path


def _fill(value, world):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        obj = getattr(world, value[1:-1])
        return obj.request_id if hasattr(obj, "request_id") else obj.pk
    if isinstance(value, str):
        for name in SCHEMA_PARAMS:
            if name in value:
                value = value.replace(name, str(_fill(name, world)))
        return value
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


def expected(credential: str, kind: str, success: int) -> int:
    if credential in ("anonymous", "retired_master_key"):
        return 401
    if credential == "no_role_token":
        return 403
    if credential in ("auditor_token", "session_auditor"):
        return 200 if kind == READ else 403
    return success


def test_every_operation_is_covered():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert {(method, _schema_path(path)) for method, path, *_ in OPERATIONS} == in_schema


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method,path,kind,success,body", OPERATIONS,
                         ids=[f"{m.upper()} {p}" for m, p, *_ in OPERATIONS])
def test_who_may_do_what(api, world, credential, method, path, kind, success, body):
    client = api(credential)
    response = getattr(client, method)(_fill(path, world), _fill(body, world), format="json")
    status = expected(credential, kind, success)
    if status >= 400:
        error = assert_error(response, status)
        if status == 401:
            assert response["WWW-Authenticate"] == 'Bearer realm="api"'
            assert error["type"] == "authentication_error"
        else:
            assert error["type"] == "permission_error"
    else:
        assert response.status_code == status, response.content[:800]
