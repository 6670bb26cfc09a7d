"""Shared by the admin tests: URL helpers, form payloads and small fixtures (Django's test client, logged in
as a superuser through pytest-django's `admin_client`)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from routing.models import Deployment, ModelGroup, RequestLog

SECRET = "sk-upstream-PLAINTEXT-0123456789abcd"
FULL_KEY = re.compile(r"sk-gw-[0-9a-f]{8}-[A-Za-z0-9_-]{32}")


def url(model, view: str, *args) -> str:
    return reverse(f"admin:routing_{model._meta.model_name}_{view}", args=args)


def deployment_post(group: ModelGroup, **overrides) -> dict:
    data = {
        "group": group.pk, "name": "east", "provider": "azure", "api_base": "https://res.openai.azure.com",
        "upstream_model": "gpt-5.5-prod", "api_version": "", "new_api_key": "", "weight": 1, "priority": 0,
        "rpm": "", "tpm": "", "connect_timeout": 5, "first_byte_timeout": 600, "idle_timeout": 300,
        "total_timeout": 1800, "speaks_compact": "unknown", "policy": "", "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def formset(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


GROUP_RESILIENCE = {"max_attempts": 2, "retry_on_status": "429,500,502,503,504", "cooldown_failures": 3,
                    "cooldown_window": 60, "cooldown_seconds": 30}


@pytest.fixture
def group(db) -> ModelGroup:
    return ModelGroup.objects.create(name="azure-gpt-5.5")


@pytest.fixture
def deployment(group) -> Deployment:
    dep = Deployment(group=group, name="east", provider="azure", api_base="https://res.openai.azure.com",
                     upstream_model="gpt-5.5-prod")
    dep.api_key = SECRET
    dep.save()
    return dep


@pytest.fixture
def log_rows(db) -> list[RequestLog]:
    now = timezone.now()
    common = {"method": "POST", "path": "/v1/responses", "endpoint": "responses", "key_name": "ci"}
    return [
        RequestLog.objects.create(request_id="req_ok", created_at=now, status=200, group_name="azure-gpt-5.5",
                                  deployment_name="east", stream=True, response_id="resp_abc", total_tokens=42,
                                  policy_changes=[{"action": "drop", "path": "stream_options",
                                                   "policy": "azure-responses"}],
                                  attempts=[{"deployment": "east", "status": 200}], **common),
        RequestLog.objects.create(request_id="req_fail", created_at=now - timedelta(minutes=1), status=502,
                                  group_name="gpt-4o", deployment_name="west", **common),
    ]



def policy_post(rules: list[dict], **fields) -> dict:
    defaults = {"endpoint": "any", "stream": "any", "position": 0, "enabled": "on"}
    return {"name": "strict", "description": "", "extends": "", **fields,
            **formset("rules", [{**defaults, **rule} for rule in rules])}
