"""Database writes (keyword-only, typed)."""

from datetime import datetime

from django.db import transaction
from django.db.models import F

from . import keys as keys_mod
from .models import ApiKey, Deployment, ModelGroup, ParamPolicy, PolicyRule, Provider, RouteVersion

AZURE_RESPONSES_PRESET = "azure-responses"


def route_version_bump() -> None:
    """Tell every gateway process (they poll this row) that routes or keys changed."""
    if not RouteVersion.objects.filter(pk=1).update(version=F("version") + 1):
        RouteVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def presets_ensure() -> dict[str, ParamPolicy]:
    """The built-in policies. Azure's Responses API rejects `stream_options` with
    400 unknown_parameter, so the Azure preset drops it there (and logs the drop)."""
    policy, created = ParamPolicy.objects.get_or_create(
        name=AZURE_RESPONSES_PRESET,
        defaults={"builtin": True, "description": "Azure OpenAI Responses API: drop stream_options, which Azure "
                  "rejects with 400 unknown_parameter (usage arrives in response.completed anyway)."},
    )
    if created:
        PolicyRule.objects.create(policy=policy, position=0, action="drop", path="stream_options", endpoint="responses")
    return {AZURE_RESPONSES_PRESET: policy}


def default_policy_for(provider: str) -> ParamPolicy | None:
    return presets_ensure()[AZURE_RESPONSES_PRESET] if provider == Provider.AZURE else None


@transaction.atomic
def api_key_create(*, name: str, allowed_groups: list[ModelGroup] | None = None, expires_at: datetime | None = None,
                   rpm: int | None = None, tpm: int | None = None, max_parallel: int | None = None) -> tuple[ApiKey, str]:
    """Create a client key; returns (row, full_key). The full key exists only in the return value."""
    full, prefix, digest = keys_mod.generate()
    key = ApiKey.objects.create(name=name, prefix=prefix, key_hash=digest, expires_at=expires_at,
                                rpm=rpm, tpm=tpm, max_parallel=max_parallel)
    if allowed_groups:
        key.allowed_groups.set(allowed_groups)
    return key, full


def demo_route_ensure() -> ModelGroup:
    """The route `make run` serves out of the box: model "demo" → the built-in mock."""
    group, _ = ModelGroup.objects.get_or_create(name="demo", defaults={"description": "Built-in mock provider"})
    Deployment.objects.get_or_create(group=group, name="mock", defaults={"provider": Provider.MOCK})
    return group
