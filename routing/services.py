"""Database writes (keyword-only, typed)."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from routing import keys as keys_mod
from routing import selectors
from routing.management_api import models as management_tokens
from routing.management_api.models import ManagementToken
from routing.models import (
    ApiKey,
    BridgedResponse,
    Deployment,
    GatewaySettings,
    ModelGroup,
    ParamPolicy,
    PolicyRule,
    Provider,
    RequestLog,
    RouteVersion,
)

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


# --- admin writes (appended; the admin classes stay declarative and call these) -------------------------------

DEPLOYMENT_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    Provider.AZURE: ("api_base", "upstream_model"),
    Provider.OPENAI_COMPATIBLE: ("api_base",),
}


def deployment_missing_fields(*, provider: str, api_base: str, upstream_model: str) -> dict[str, str]:
    """What a provider kind needs before it can route anything: {field: message}, empty when complete.
    Azure needs its resource URL and deployment name; a compatible server needs its URL;
    OpenAI defaults to api.openai.com and the mock needs nothing."""
    values = {"api_base": api_base, "upstream_model": upstream_model}
    return {field: f"Required for provider '{provider}'."
            for field in DEPLOYMENT_REQUIRED_FIELDS.get(provider, ()) if not (values[field] or "").strip()}


@transaction.atomic
def deployment_save(*, deployment: Deployment, new_api_key: str = "", clear_api_key: bool = False) -> Deployment:
    """Create or update a deployment. The upstream key is write-only: a blank `new_api_key` keeps the stored
    one, `clear_api_key` removes it. A NEW deployment without a policy gets its provider's preset
    (Azure: azure-responses); an existing one keeps whatever ops chose, including none."""
    if clear_api_key:
        deployment.api_key = ""
    elif new_api_key:
        deployment.api_key = new_api_key  # the property setter encrypts
    if deployment.pk is None and deployment.policy_id is None:
        deployment.policy = default_policy_for(deployment.provider)
    deployment.save()
    return deployment


def api_key_issue(*, key: ApiKey) -> str:
    """Give an unsaved ApiKey (built by the admin form) a fresh secret and save it; returns the full key,
    which exists only in this return value (the row keeps prefix + sha256, like `api_key_create`)."""
    full, key.prefix, key.key_hash = keys_mod.generate()
    key.save()
    return full


@transaction.atomic
def api_keys_revoke(*, key_ids: list[int]) -> int:
    """Deactivate keys one save at a time, so the post_save signal bumps the route version and every
    gateway process drops them within seconds (a bulk .update() would bypass the signal)."""
    revoked = 0
    for key in ApiKey.objects.filter(pk__in=key_ids, is_active=True):
        key.is_active = False
        key.save(update_fields=["is_active"])
        revoked += 1
    return revoked


# --- ops console writes (appended) ------------------------------------------------------------------------------

@transaction.atomic
def deployments_set_enabled(*, deployment_ids: list[int], enabled: bool) -> int:
    """Enable or disable deployments one save at a time (signals bump the route version; history records
    who did it). Returns how many changed."""
    changed = 0
    for dep in Deployment.objects.filter(pk__in=deployment_ids).exclude(enabled=enabled):
        dep.enabled = enabled
        dep.save(update_fields=["enabled", "updated_at"])
        changed += 1
    return changed


def _free_name(taken, base: str, limit: int = 200) -> str:
    """`base (copy)`, `base (copy 2)`, ... the first not in `taken`, within `limit` characters."""
    for n in range(1, 1000):
        suffix = " (copy)" if n == 1 else f" (copy {n})"
        name = base[: limit - len(suffix)] + suffix
        if not taken(name):
            return name
    raise ValueError("no free name")


@transaction.atomic
def deployment_clone(*, deployment: Deployment) -> Deployment:
    """A disabled copy in the same group (same upstream, key, policy, limits), for ops to edit and enable."""
    clone = Deployment.objects.get(pk=deployment.pk)
    clone.pk = clone.id = None
    clone._state.adding = True
    clone.name = _free_name(lambda n: Deployment.objects.filter(group_id=clone.group_id, name=n).exists(),
                            deployment.name)
    clone.enabled = False
    clone.save()
    return clone


@transaction.atomic
def policy_copy(*, policy: ParamPolicy) -> ParamPolicy:
    """An editable copy of a policy (a built-in preset is read-only): same description, base and rules."""
    copy = ParamPolicy.objects.create(
        name=_free_name(lambda n: ParamPolicy.objects.filter(name=n).exists(), policy.name),
        description=policy.description, extends=policy.extends, builtin=False)
    for rule in policy.rules.all():
        rule.pk = rule.id = None
        rule._state.adding = True
        rule.policy = copy
        rule.save()
    return copy


@transaction.atomic
def policy_add_drop_rule(*, deployment: Deployment, path: str, endpoint: str = "any") -> ParamPolicy:
    """Add `drop <path>` to the policy `deployment` uses. A built-in preset (or no policy) is not edited in
    place: a new policy extending it is created and the deployment switched to it. Returns the edited policy."""
    policy = deployment.policy
    if policy is None or policy.builtin:
        base = policy
        name = f"{deployment.name[:180]} params"  # within the 200 characters of ParamPolicy.name
        if ParamPolicy.objects.filter(name=name).exists():
            name = _free_name(lambda n: ParamPolicy.objects.filter(name=n).exists(), name)
        policy = ParamPolicy.objects.create(
            name=name,
            description=f"Created for deployment '{deployment.name}' from a rejected parameter.", extends=base)
        deployment.policy = policy
        deployment.save(update_fields=["policy", "updated_at"])
    last = policy.rules.order_by("-position").values_list("position", flat=True).first()
    PolicyRule.objects.create(policy=policy, position=(last or 0) + 1, action="drop", path=path, endpoint=endpoint)
    return policy


def api_key_regenerate(*, key: ApiKey) -> str:
    """A new secret for an existing key (same name, groups and limits); the old secret stops working as soon
    as the gateway processes reload (the save bumps the route version). Returns the new full key, once."""
    full, key.prefix, key.key_hash = keys_mod.generate()
    key.save(update_fields=["prefix", "key_hash"])
    return full


def master_key_set_enabled(*, enabled: bool) -> GatewaySettings:
    """Retire (or bring back) the bootstrap GATEWAY_MASTER_KEY. Retiring needs a usable client key first,
    so ops cannot lock every client out by accident."""
    row = selectors.gateway_settings()
    if not enabled and not selectors.usable_api_keys_exist():
        raise ValidationError("Create an active API key before retiring the master key.")
    row.master_key_enabled = enabled
    row.save()
    return row


@transaction.atomic
def policy_restore(*, policy: ParamPolicy, as_of: datetime) -> ParamPolicy:
    """Put a policy and its rules back as they were at `as_of` (django-simple-history's records): fields,
    rules that existed then (recreated when deleted since), rules added since removed."""
    then = ParamPolicy.history.as_of(as_of).get(pk=policy.pk)
    policy.name, policy.description, policy.extends_id = then.name, then.description, then.extends_id
    policy.save()
    old_rules = {r.pk: r for r in PolicyRule.history.as_of(as_of).filter(policy_id=policy.pk)}
    PolicyRule.objects.filter(policy=policy).exclude(pk__in=old_rules).delete()
    for rule in old_rules.values():
        rule._state.adding = not PolicyRule.objects.filter(pk=rule.pk).exists()
        rule.save()
    return policy


def request_logs_prune(*, older_than: datetime, batch_size: int = 5000) -> int:
    """Delete RequestLog rows created before `older_than`, oldest first, `batch_size` rows per statement and
    transaction, so the log writer is never blocked for long. Returns how many were deleted."""
    deleted = 0
    while True:
        ids = list(RequestLog.objects.filter(created_at__lt=older_than).order_by("created_at")
                   .values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += RequestLog.objects.filter(pk__in=ids).delete()[0]


# --- the Chat bridge's response store (routing/forwarding/bridge_store.py) ---------------------------------------

def bridged_response_save(*, response_id: str, group_name: str, deployment_id: int | None, previous_response_id: str,
                          response: bytes, input_items: bytes, ttl_seconds: float) -> BridgedResponse:
    now = timezone.now()
    return BridgedResponse.objects.create(
        response_id=response_id, group_name=group_name, deployment_id=deployment_id,
        previous_response_id=previous_response_id, response=response.decode(), input_items=input_items.decode(),
        size=len(response) + len(input_items), created_at=now, expires_at=now + timedelta(seconds=ttl_seconds))


def bridged_response_delete(*, response_id: str) -> bool:
    return BridgedResponse.objects.filter(response_id=response_id).delete()[0] > 0


def bridged_responses_prune(*, max_total_bytes: int, batch: int = 1000) -> tuple[int, int]:
    """Delete expired stored responses, then the oldest ones until the rest fit `max_total_bytes`.
    Returns (expired, trimmed). Deletes in batches, each its own statement."""
    expired = 0
    while True:
        ids = list(BridgedResponse.objects.filter(expires_at__lte=timezone.now())
                   .values_list("response_id", flat=True)[:batch])
        if not ids:
            break
        expired += BridgedResponse.objects.filter(response_id__in=ids).delete()[0]
    total = BridgedResponse.objects.aggregate(total=Sum("size"))["total"] or 0
    trimmed = 0
    if total > max_total_bytes:
        kept, doomed = 0, []
        for rid, size in BridgedResponse.objects.order_by("-created_at").values_list("response_id", "size") \
                .iterator(chunk_size=2000):
            kept += size
            if kept > max_total_bytes:
                doomed.append(rid)
        for start in range(0, len(doomed), batch):
            trimmed += BridgedResponse.objects.filter(response_id__in=doomed[start:start + batch]).delete()[0]
    return expired, trimmed


# --- management API tokens (routing/management_api) --------------------------------------------------------------

def management_token_create(*, user, name: str, expires_at: datetime | None = None) -> tuple[ManagementToken, str]:
    """A token for /api/ acting as `user`; returns (row, full_token). The full token exists only in the return
    value: the row keeps its prefix and sha256."""
    full, prefix, digest = management_tokens.generate()
    token = ManagementToken.objects.create(name=name, user=user, prefix=prefix, token_hash=digest,
                                           expires_at=expires_at)
    return token, full


def management_tokens_revoke(*, token_ids: list[int]) -> int:
    """Revoke tokens (refused from the next request on); the rows stay, so the history still names them."""
    return ManagementToken.objects.filter(pk__in=token_ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
