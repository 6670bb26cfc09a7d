"""Where a model call may go, in order: its group, then the group's fallback groups, and
within each group the deployments ordered by the group's strategy (resilience.router).

Capabilities: only deployments that can serve the endpoint are candidates. `/v1/responses`
goes to deployments that speak the Responses API, or Chat Completions through the bridge;
a call continuing an upstream response (`route="native"`) only to the former, one continuing a
bridged response (`route="bridge"`) only to the latter. A group whose deployments all speak
the endpoint natively is not filtered at all (`GroupSnap.common_apis`).

State affinity: a call that continues a previous response (`previous_response_id`) or
sends back encrypted reasoning goes first to the deployment that produced it, then to the
other deployments on the same upstream resource. The owner must be in a group the key may
use: a key limited to one group cannot continue another group's conversation, even when
both groups share a resource.
"""

import random
from collections.abc import Iterator

from routing import errors
from routing.bridge import is_bridged_id
from routing.capabilities import CHAT, NATIVE_NEED, RESPONSES
from routing.config.snapshots import DeploymentSnap, GroupSnap, KeySnap, RouteSnapshot
from routing.forwarding import affinity
from routing.resilience import load, router

_rng = random.Random()


def groups_in_order(group: GroupSnap, snap: RouteSnapshot) -> Iterator[GroupSnap]:
    """The group, then its fallbacks depth-first, each at most once (loops cannot happen)."""
    seen, stack = set(), [group]
    while stack:
        g = stack.pop(0)
        if g.name in seen:
            continue
        seen.add(g.name)
        yield g
        stack[0:0] = [snap.groups[n] for n in g.fallbacks if n in snap.groups and n not in seen]


async def owner(body: dict, key: KeySnap, snap: RouteSnapshot) -> DeploymentSnap | None:
    """The deployment holding the state this call continues, if the gateway knows it.

    A `previous_response_id` owned by a group the key may not use is refused exactly as
    the upstream refuses an id it does not know; reasoning owned by such a group is just
    not followed (it will not decrypt elsewhere, and is then stripped)."""
    prev = body.get("previous_response_id")
    if isinstance(prev, str) and prev and not is_bridged_id(prev):  # bridged ones: the gateway's own store
        found = await affinity.lookup(prev)
        if found is not None:
            if not key.may_use(found.group):
                raise errors.previous_response_not_found(prev)
            dep = snap.deployments.get(found.deployment_id)
            if dep is not None:
                return dep
    ids = affinity.reasoning_ids(body)
    found = await affinity.lookup(*ids) if ids else None
    if found is None or not key.may_use(found.group):
        return None
    return snap.deployments.get(found.deployment_id)


def ordered(group: GroupSnap, prefer: DeploymentSnap | None, endpoint: str,
            route: str = "any") -> list[DeploymentSnap]:
    candidates = router.order_candidates(group, rng=_rng, inflight=load.stats.inflight, ttfb=load.stats.ttfb,
                                         prefer=prefer)
    need = NATIVE_NEED.get(endpoint)
    if need is None or (need in group.common_apis and route != "bridge"):
        return candidates
    if endpoint == "responses" and route != "native":
        if route == "bridge":
            return [d for d in candidates if CHAT in d.apis]
        return [d for d in candidates if RESPONSES in d.apis or CHAT in d.apis]
    return [d for d in candidates if need in d.apis]
