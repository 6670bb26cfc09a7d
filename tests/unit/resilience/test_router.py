"""routing/router.py: each strategy's order and distribution, with fixed seeds."""

import random
from collections import Counter

from routing.config.snapshots import DeploymentSnap, GroupSnap
from routing.resilience.router import order_candidates


def dep(i: int, **kw) -> DeploymentSnap:
    return DeploymentSnap(**{"id": i, "name": f"d{i}", "group_name": "g", "provider": "mock", "api_base": "",
                             "upstream_model": "", "api_version": "", "api_key": "", **kw})


def group(strategy: str, *deps: DeploymentSnap) -> GroupSnap:
    return GroupSnap(id=1, name="g", strategy=strategy, max_attempts=2, deployments=deps)


def test_weighted_distribution_follows_weights():
    g = group("weighted", dep(1, weight=1), dep(2, weight=3))
    rng = random.Random(7)
    firsts = Counter(order_candidates(g, rng=rng)[0].id for _ in range(20_000))
    assert 0.72 < firsts[2] / 20_000 < 0.78  # 3/4 expected


def test_every_candidate_is_returned_once():
    g = group("weighted", dep(1), dep(2), dep(3))
    order = order_candidates(g, rng=random.Random(1))
    assert sorted(d.id for d in order) == [1, 2, 3]


def test_priority_orders_by_priority_then_weight():
    g = group("priority", dep(1, priority=5), dep(2, priority=0), dep(3, priority=1))
    assert [d.id for d in order_candidates(g, rng=random.Random(3))] == [2, 3, 1]


def test_least_busy_prefers_fewest_inflight():
    g = group("least_busy", dep(1), dep(2), dep(3))
    order = order_candidates(g, rng=random.Random(0), inflight={1: 4, 2: 0, 3: 2})
    assert [d.id for d in order] == [2, 3, 1]


def test_lowest_latency_measures_unknown_first_then_fastest():
    g = group("lowest_latency", dep(1), dep(2), dep(3))
    assert [d.id for d in order_candidates(g, rng=random.Random(0), ttfb={1: 0.5, 3: 0.1})] == [2, 3, 1]


def test_prefer_goes_first_whatever_the_strategy():
    g = group("priority", dep(1, priority=0), dep(2, priority=9))
    assert order_candidates(g, rng=random.Random(0), prefer=g.deployments[1])[0].id == 2


def test_after_prefer_come_deployments_on_the_same_resource():
    east = dict(provider="azure", api_base="https://east.openai.azure.com")
    west = dict(provider="azure", api_base="https://west.openai.azure.com")
    owner = dep(9, **east)  # in another group (a fallback's owner), same resource as 3
    g = group("priority", dep(1, priority=0, **west), dep(2, priority=1, **west), dep(3, priority=2, **east))
    assert [d.id for d in order_candidates(g, rng=random.Random(0), prefer=owner)] == [3, 1, 2]
