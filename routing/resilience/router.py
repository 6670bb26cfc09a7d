"""Deployment selection: a pure function of the group, load/latency stats and a RNG.

`order_candidates()` returns every enabled deployment of the group, best first; the
caller tries them in that order up to the group's attempt limit.

- weighted: weighted random order without replacement (Efraimidis–Spirakis keys).
- priority: ascending `priority`; ties in weighted random order.
- least_busy: fewest in-flight requests; ties in weighted random order.
- lowest_latency: lowest decayed time to first byte; deployments never measured go
  first (so they get measured); ties in weighted random order.
`prefer` (the deployment holding a previous response or the reasoning sent back) goes
first, then the other deployments on the same upstream resource (same provider and API
base: they can read its stored state and decrypt its reasoning), then the rest.
"""

import random
from collections.abc import Mapping

from routing.config.snapshots import DeploymentSnap, GroupSnap


def _weighted_key(dep: DeploymentSnap, rng: random.Random) -> float:
    weight = max(dep.weight, 0) or 1e-9
    return -(rng.random() ** (1.0 / weight))  # sort ascending → heavier first more often


def order_candidates(group: GroupSnap, *, rng: random.Random, inflight: Mapping[int, int] | None = None,
                     ttfb: Mapping[int, float] | None = None,
                     prefer: DeploymentSnap | None = None) -> list[DeploymentSnap]:
    deps = group.deployments
    if len(deps) <= 1:
        return list(deps)
    shuffle = {d.id: _weighted_key(d, rng) for d in deps}
    strategy = group.strategy
    if strategy == "priority":
        ordered = sorted(deps, key=lambda d: (d.priority, shuffle[d.id]))
    elif strategy == "least_busy":
        load = inflight or {}
        ordered = sorted(deps, key=lambda d: (load.get(d.id, 0), shuffle[d.id]))
    elif strategy == "lowest_latency":
        seen = ttfb or {}
        ordered = sorted(deps, key=lambda d: (seen.get(d.id, -1.0), shuffle[d.id]))
    else:
        ordered = sorted(deps, key=lambda d: shuffle[d.id])
    if prefer is not None:
        resource = (prefer.provider, prefer.api_base)
        ordered.sort(key=lambda d: (d.id != prefer.id, (d.provider, d.api_base) != resource))
    return ordered
