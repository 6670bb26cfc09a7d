"""Database reads. None runs per request: these build the in-memory snapshots, plus
two rare fallbacks (a key created a moment ago, a response id not in memory)."""

import dataclasses
import logging

from django.utils import timezone

from routing import keys as keys_mod
from routing.config.snapshots import DeploymentSnap, GroupSnap, KeySnap, RouteSnapshot
from routing.models import (
    ApiKey,
    BridgedResponse,
    Deployment,
    GatewaySettings,
    ModelGroup,
    ParamPolicy,
    ResponseAffinity,
    RouteVersion,
)
from routing.policy import ACTIONS, Rule, compile_rule

log = logging.getLogger(__name__)


def route_version() -> int:
    row = RouteVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return row or 0


def policy_rules(policy: ParamPolicy | None, policies: dict[int, ParamPolicy]) -> tuple[Rule, ...]:
    """The compiled rules of a policy, its `extends` chain first (base → child)."""
    chain, seen = [], set()
    while policy is not None and policy.pk not in seen:
        seen.add(policy.pk)
        chain.append(policy)
        policy = policies.get(policy.extends_id) if policy.extends_id else None
    rules = []
    for pol in reversed(chain):
        for r in pol.rules.all():
            if r.enabled:
                rules.append(compile_rule(r.action, r.path, value=r.value, target=r.target, endpoint=r.endpoint,
                                          stream=r.stream, message=r.message, source=pol.name))
    return tuple(rules)


def _deployment_snap(d: Deployment, group: str, policies: dict[int, ParamPolicy]) -> DeploymentSnap | None:
    try:
        api_key = d.api_key
    except ValueError:
        log.error("deployment %s (%s) skipped: its upstream key cannot be decrypted", d.pk, d.name)
        return None
    return DeploymentSnap(
        id=d.pk, name=d.name, group_name=group, provider=d.provider, api_base=d.api_base,
        upstream_model=d.upstream_model, api_version=d.api_version, api_key=api_key,
        weight=d.weight, priority=d.priority, rpm=d.rpm, tpm=d.tpm,
        connect_timeout=d.connect_timeout, first_byte_timeout=d.first_byte_timeout,
        idle_timeout=d.idle_timeout, total_timeout=d.total_timeout, apis=d.capabilities,
        collect_stream_usage=d.collect_stream_usage,
        rules=policy_rules(policies.get(d.policy_id) if d.policy_id else None, policies),
    )


def load_snapshot() -> RouteSnapshot:
    version = route_version()
    policies = {p.pk: p for p in ParamPolicy.objects.prefetch_related("rules")}
    groups: dict[str, GroupSnap] = {}
    deployments: dict[int, DeploymentSnap] = {}
    for g in ModelGroup.objects.filter(enabled=True).prefetch_related("deployments", "fallback_links__fallback"):
        deps = tuple(
            snap for d in g.deployments.all() if d.enabled and (snap := _deployment_snap(d, g.name, policies))
        )
        deployments.update((d.id, d) for d in deps)
        groups[g.name] = GroupSnap(id=g.pk, name=g.name, strategy=g.strategy,
                                   max_attempts=max(1, g.max_attempts), deployments=deps,
                                   created=int(g.created_at.timestamp()),
                                   retry_on=frozenset(int(x) for x in g.retry_on_status.split(",") if x.strip().isdigit()),
                                   cooldown_failures=max(1, g.cooldown_failures), cooldown_window=g.cooldown_window,
                                   cooldown_seconds=g.cooldown_seconds,
                                   fallbacks=tuple(link.fallback.name for link in g.fallback_links.all()))
    keys = {k.key_hash: key_snap(k) for k in ApiKey.objects.filter(is_active=True).prefetch_related("allowed_groups")}
    return RouteSnapshot(version=version, groups=groups, keys_by_hash=keys, deployments=deployments,
                         master_key_enabled=master_key_enabled())


def key_snap(k: ApiKey) -> KeySnap:
    allowed = frozenset(g.name for g in k.allowed_groups.all())
    return KeySnap(id=k.pk, name=k.name, allowed_groups=allowed or None, expires_at=k.expires_at,
                   rpm=k.rpm, tpm=k.tpm, max_parallel=k.max_parallel)


def api_key_by_secret(raw: str) -> KeySnap | None:
    k = ApiKey.objects.filter(key_hash=keys_mod.hash_key(raw), is_active=True).prefetch_related("allowed_groups").first()
    return key_snap(k) if k else None


def response_deployments(response_ids: list[str]) -> dict[str, tuple[int, str]]:
    """{response or reasoning id: (deployment id, group name)} for the ids still remembered (one query)."""
    rows = (ResponseAffinity.objects.filter(response_id__in=response_ids, expires_at__gt=timezone.now())
            .values_list("response_id", "deployment_id", "group_name"))
    return {rid: (dep_id, group) for rid, dep_id, group in rows}


# --- ops console reads (appended; the admin calls these) -------------------------------------------------------

def deployment_snap(deployment: Deployment, *, extra_rules: tuple[Rule, ...] = (),
                    policy: ParamPolicy | None = None) -> DeploymentSnap:
    """One deployment as the gateway would call it now, whether enabled or not: its current row, its policy's
    compiled rules (or `policy`'s instead, to preview another policy on it), then `extra_rules`.
    Raises ValueError when the stored upstream key cannot be decrypted."""
    policies = {p.pk: p for p in ParamPolicy.objects.prefetch_related("rules")}
    chosen_id = policy.pk if policy is not None else deployment.policy_id
    api_key = deployment.api_key  # ValueError when it cannot be decrypted
    snap = _deployment_snap(deployment, deployment.group.name, {})
    return dataclasses.replace(snap, api_key=api_key,
                               rules=policy_rules(policies.get(chosen_id), policies) + tuple(extra_rules))


def effective_rules(*, policy: ParamPolicy) -> list[dict]:
    """A policy's rules as the engine applies them: its `extends` chain (base first), enabled rules only,
    in phase order (reject → allow_only → drop → rename → set → default), list order within a phase."""
    chain, seen, node = [], set(), policy
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        chain.append(node)
        node = node.extends
    rows = []
    for depth, pol in enumerate(reversed(chain)):
        for rule in pol.rules.order_by("position", "id"):
            if rule.enabled:
                rows.append({"rule": rule, "policy": pol, "inherited": pol.pk != policy.pk, "depth": depth})
    rows.sort(key=lambda r: ACTIONS.index(r["rule"].action))  # stable: chain and list order within a phase
    return rows


def gateway_settings() -> GatewaySettings:
    """The settings row (defaults when it was never saved)."""
    return GatewaySettings.objects.filter(pk=1).first() or GatewaySettings(pk=1)


def master_key_enabled() -> bool:
    """Whether GATEWAY_MASTER_KEY is still accepted (ops retire it in the admin once real keys exist)."""
    return gateway_settings().master_key_enabled


def usable_api_keys_exist() -> bool:
    """At least one active client key that has not expired."""
    from django.db.models import Q

    return ApiKey.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), is_active=True).exists()


def rejected_params(*, deployment_id: int | None = None, limit: int = 50) -> list[dict]:
    """Parameters upstreams refused (RequestLog.rejected_param), per deployment and parameter: count, first and
    last seen, the latest request id. One grouped query over the partial index `requestlog_rejected_params`,
    plus one indexed lookup per row for the example id; most recent first."""
    from django.db.models import Count, Max, Min

    from routing.models import RequestLog

    rows = RequestLog.objects.exclude(rejected_param="")
    if deployment_id is not None:
        rows = rows.filter(deployment_id=deployment_id)
    grouped = list(rows.values("deployment_id", "rejected_param")
                   .annotate(count=Count("id"), first_seen=Min("created_at"), last_seen=Max("created_at"),
                             deployment_name=Max("deployment_name"))
                   .order_by("-last_seen")[:limit])
    for row in grouped:
        row["example_request_id"] = (
            RequestLog.objects.filter(deployment_id=row["deployment_id"], rejected_param=row["rejected_param"],
                                      created_at=row["last_seen"]).values_list("request_id", flat=True).first())
    return grouped


# --- the Chat bridge's response store (routing/forwarding/bridge_store.py) ---------------------------------------

def bridged_response(response_id: str) -> BridgedResponse | None:
    """A stored bridged response that has not expired."""
    return BridgedResponse.objects.filter(response_id=response_id, expires_at__gt=timezone.now()).first()


def bridged_chain(response_id: str, *, max_hops: int, max_bytes: int) -> list[BridgedResponse] | None:
    """The stored responses a `previous_response_id` stands for, oldest first (the response itself
    last): None when one of them is unknown or expired, or the chain is longer than `max_hops`
    responses or `max_bytes` of stored JSON (one query per response, by primary key)."""
    chain, size, next_id = [], 0, response_id
    while next_id:
        row = bridged_response(next_id)
        size += row.size if row is not None else 0
        if row is None or len(chain) >= max_hops or size > max_bytes:
            return None
        chain.append(row)
        next_id = row.previous_response_id
    chain.reverse()
    return chain
