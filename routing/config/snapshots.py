"""Frozen, Django-free views of the routing configuration that requests read.

`selectors.load_snapshot()` builds a `RouteSnapshot` from the database in one go; the
hot path only ever reads these objects, swapped atomically when routes change, so an
in-flight request keeps the snapshot it started with.
"""

from dataclasses import dataclass, field
from datetime import datetime

from routing.capabilities import ALL as ALL_CAPABILITIES
from routing.policy import Rule


@dataclass(frozen=True, slots=True)
class DeploymentSnap:
    id: int
    name: str
    group_name: str
    provider: str
    api_base: str
    upstream_model: str
    api_version: str
    api_key: str = field(repr=False)
    weight: int = 1
    priority: int = 0
    rpm: int | None = None
    tpm: int | None = None
    connect_timeout: float = 5.0
    first_byte_timeout: float = 600.0
    idle_timeout: float = 300.0
    total_timeout: float = 1800.0
    apis: frozenset[str] = ALL_CAPABILITIES  # what the upstream speaks (routing/capabilities.py)
    collect_stream_usage: bool = False  # ops opted in to asking chat streams for usage
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupSnap:
    id: int
    name: str
    strategy: str
    max_attempts: int
    deployments: tuple[DeploymentSnap, ...]
    created: int = 0  # unix time, for /v1/models
    retry_on: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    cooldown_failures: int = 3
    cooldown_window: float = 60.0
    cooldown_seconds: float = 30.0
    fallbacks: tuple[str, ...] = ()  # group names, in order
    # Capabilities every deployment has: an endpoint they all serve natively needs no filtering.
    common_apis: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        common = frozenset.intersection(*(d.apis for d in self.deployments)) if self.deployments else frozenset()
        object.__setattr__(self, "common_apis", common)


@dataclass(frozen=True, slots=True)
class KeySnap:
    id: int | None
    name: str
    allowed_groups: frozenset[str] | None  # None: every group
    expires_at: datetime | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    def may_use(self, group: str) -> bool:
        return self.allowed_groups is None or group in self.allowed_groups


@dataclass(frozen=True, slots=True)
class RouteSnapshot:
    version: int
    groups: dict[str, GroupSnap]
    keys_by_hash: dict[str, KeySnap]
    deployments: dict[int, DeploymentSnap]
    master_key_enabled: bool = True  # ops retire GATEWAY_MASTER_KEY in the admin once real keys exist
