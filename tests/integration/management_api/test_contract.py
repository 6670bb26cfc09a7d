"""Contract test: schemathesis generates requests from the served OpenAPI schema (valid and invalid ones, NUL
characters included) for every operation, sends them to the real Django app in process (its WSGI handler: the
middleware and URLconf the gateway serves /api/ with) with an ops token, and checks each answer: never a 5xx,
a documented status, the documented content type and body. Bounded: a few examples per operation, derandomized,
about 20 s in all."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture
def keep_connection():
    """What Django's test client does around a request: the handler's request signals would close the
    connection that holds the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


# Loaded when the module is collected (serving the schema touches no database). schemathesis' lazy
# `from_fixture` loader does not work with pytest 9 (it sets `request.node._nodeid`, which pytest 9 removed).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
DEEP = os.environ.get("GATEWAY_CONTRACT_DEEP") == "1"  # also the coverage phase (boundaries): about 1 min more
EXAMPLES = 50 if DEEP else 8
schema.config.generation.update(max_examples=EXAMPLES, deterministic=not DEEP, database="none")
schema.config.phases.coverage.enabled = DEEP


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
def test_api_conforms_to_its_schema(case, keep_connection, world, ops_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {ops_token}"}, checks=CHECKS)
