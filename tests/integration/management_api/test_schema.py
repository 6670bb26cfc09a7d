"""The OpenAPI schema served at /api/schema/: valid OpenAPI 3, /api/ only, secrets write-only, both security
schemes, paged lists, the error shape; the docs pages load their scripts from the gateway itself."""

import re

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient


@pytest.fixture(scope="module")
def schema():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def component(schema, name):
    return schema["components"]["schemas"][name]


def test_it_validates(schema, tmp_path):
    validate_schema(schema)
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_only_the_management_api(schema):
    assert schema["paths"] and all(path.startswith("/api/") for path in schema["paths"])
    assert not any(path.startswith(("/api/schema", "/api/docs")) for path in schema["paths"])


def test_secrets_are_write_only_and_the_client_key_shown_once(schema):
    request, response = component(schema, "DeploymentRequest"), component(schema, "Deployment")
    assert request["properties"]["api_key"]["writeOnly"] is True
    assert "api_key" not in response["properties"] and "api_key_encrypted" not in response["properties"]
    assert response["properties"]["api_key_set"]["readOnly"] is True
    assert "key" not in component(schema, "ApiKey")["properties"]
    assert "key_hash" not in component(schema, "ApiKey")["properties"]
    assert "key" in component(schema, "ApiKeyIssued")["required"]
    created = schema["paths"]["/api/keys/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/ApiKeyIssued"}


def test_security_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "description": schemes["bearerAuth"][
        "description"]}
    assert schemes["cookieAuth"]["in"] == "cookie"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"bearerAuth": []}, {"cookieAuth": []}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_paging_and_errors(schema):
    logs = schema["paths"]["/api/logs/"]["get"]
    names = {p["name"] for p in logs["parameters"]}
    assert {"cursor", "page_size", "created_after", "created_before", "key", "group", "deployment", "status",
            "outcome"} <= names
    assert logs["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PaginatedRequestLogList")
    assert "next" in component(schema, "PaginatedRequestLogList")["properties"]
    assert "count" not in component(schema, "PaginatedRequestLogList")["properties"]  # a cursor: no count
    assert "count" in component(schema, "PaginatedModelGroupList")["properties"]
    error = component(schema, "ErrorDetail")
    assert set(error["required"]) == {"message", "type", "param", "code", "fields"}
    assert schema["paths"]["/api/groups/"]["post"]["responses"]["400"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_are_served_locally(page):
    client = APIClient()
    html = client.get(page).content.decode()
    assert "cdn." not in html and "jsdelivr" not in html
    scripts = re.findall(r'src="([^"]+\.js)"', html)
    assert scripts and all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts)
    for src in scripts:
        assert client.get(src).status_code == 200, src
