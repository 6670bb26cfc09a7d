"""Per-deployment circuit breaker: skip a deployment that keeps failing, then probe it.

healthy ──N failures within the window──▶ cooling ──cooldown over──▶ probing
   ▲                                                                 │
   └──────────── probe succeeds ◀────────────────────────────────────┘
                 probe fails ──▶ cooling again

A 429 with `Retry-After` cools the deployment for that long at once (it told us).
While probing, exactly one request is let through (a probe that never reports back
is given up after PROBE_TIMEOUT). The clock is injected; state is in-process, and
`routing.resilience.shared_health` mirrors it through Redis when REDIS_URL is set.

Two rules keep the breaker from hurting more than the failures do:
- **One request, one failure.** A request that retries the same deployment is one
  client seeing one bad deployment: pass `request_id=` and its failures on that
  deployment count once toward `threshold` (without it every call counts, as before).
- **Never the last usable deployment.** Pass `peers=` (the ids of the group the request
  is routed in, this one included): when none of the others is usable, the deployment
  is not cooled, not even by a 429's Retry-After, and a failed probe puts it back in
  service; the failure is still recorded (last error) and counted, so it cools as soon
  as another deployment can take the traffic. Cooling the last one would only turn the
  upstream's own answer into the gateway's 503. LiteLLM does the same for a group of one
  deployment (router_utils/cooldown_handlers.py `_should_cooldown_deployment`: the 429 and
  failure-rate rules apply only `if not is_single_deployment_model_group`); this rule
  also covers a group whose other deployments are already cooling.

An upstream that refuses the deployment's own credentials (401/403) is a configuration
problem, not load: `auth_failure()` records it and `describe()` reports the deployment as
`auth_failed` until a call succeeds again, so ops see a mistyped key in the admin at once.

How the attempt loop calls it (routing/forwarding): after each failed upstream call,
    breaker.failure(dep.id, error, threshold=group.cooldown_failures, window=group.cooldown_window,
                    cooldown=group.cooldown_seconds, retry_after=…,
                    request_id=call.request_id, peers=[d.id for d in group.deployments])
with the group the deployment belongs to (its real group also for single-deployment
calls on stored responses, so its peers are known).
"""

import itertools
import time
from dataclasses import dataclass, field

PROBE_TIMEOUT = 60.0
MAX_RETRY_AFTER = 300.0  # a Retry-After longer than this cools the deployment for this long only


@dataclass(slots=True)
class Health:
    state: str = "healthy"  # healthy | cooling | probing
    failures: dict = field(default_factory=dict)  # request id (or a unique key) → time of its first failure
    cooled_until: float = 0.0
    probe_started: float = 0.0
    last_error: str = ""
    last_error_at: float = 0.0
    changed_at: float = 0.0  # when state last changed (newest wins when merging shared state)
    auth_failed: bool = False  # the upstream refused the deployment's credentials; cleared by a success


_anonymous = itertools.count()  # failures without a request id each count


class Breaker:
    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.health: dict[int, Health] = {}
        self.on_change = None  # called with (dep_id, Health) when a state changes (shared_health)

    def usable(self, dep_id: int) -> bool:
        """May this deployment be tried now? (No side effects; see `begin`.)"""
        h = self.health.get(dep_id)
        if h is None or h.state == "healthy":
            return True
        now = self.clock()
        if h.state == "cooling":
            return now >= h.cooled_until
        return now - h.probe_started > PROBE_TIMEOUT  # probing: one at a time

    def begin(self, dep_id: int) -> bool:
        """Claim the right to call the deployment; False if another probe is under way."""
        h = self.health.get(dep_id)
        if h is None or h.state == "healthy":
            return True
        if not self.usable(dep_id):
            return False
        h.state, h.probe_started = "probing", self.clock()
        return True

    def release(self, dep_id: int) -> None:
        """A claimed probe was abandoned (client gone, request refused): the next request may probe."""
        h = self.health.get(dep_id)
        if h is not None and h.state == "probing":
            h.state, h.cooled_until = "cooling", self.clock()

    def success(self, dep_id: int) -> None:
        h = self.health.get(dep_id)
        if h is not None and (h.state != "healthy" or h.failures or h.auth_failed):
            changed = h.state != "healthy" or h.auth_failed
            h.state, h.cooled_until, h.auth_failed = "healthy", 0.0, False
            h.failures.clear()
            if changed:
                self._changed(dep_id, h)

    def auth_failure(self, dep_id: int, error: str) -> None:
        """The upstream refused the deployment's credentials (recorded; cooling is `failure()`'s job)."""
        h = self.health.setdefault(dep_id, Health())
        h.last_error, h.last_error_at = error, self.clock()
        if not h.auth_failed:
            h.auth_failed = True
            self._changed(dep_id, h)

    def failure(self, dep_id: int, error: str, *, threshold: int, window: float, cooldown: float,
                retry_after: float | None = None, request_id: str | None = None, peers=None) -> None:
        """Record a failed call; cool the deployment when the rules above say so."""
        now = self.clock()
        h = self.health.setdefault(dep_id, Health())
        h.last_error, h.last_error_at = error, now
        key = request_id if request_id is not None else next(_anonymous)
        h.failures.setdefault(key, now)
        for old, at in list(h.failures.items()):  # oldest first; only the window counts
            if at >= now - window and len(h.failures) <= max(threshold, 1):
                break
            del h.failures[old]
        told = retry_after is not None and retry_after > 0
        if not (told or h.state == "probing" or len(h.failures) >= threshold):
            return
        if peers is not None and not any(p != dep_id and self.usable(p) for p in peers):
            if h.state == "probing":  # the probe failed, but there is nothing else: back in service
                h.state = "healthy"
                self._changed(dep_id, h)
            return
        if told:
            self._cool(dep_id, h, max(h.cooled_until, now + min(retry_after, MAX_RETRY_AFTER)))
        else:
            self._cool(dep_id, h, now + cooldown)

    def _cool(self, dep_id: int, h: Health, until: float) -> None:
        h.state, h.cooled_until = "cooling", until
        h.failures.clear()
        self._changed(dep_id, h)

    def _changed(self, dep_id: int, h: Health) -> None:
        h.changed_at = self.clock()
        if self.on_change is not None:
            self.on_change(dep_id, h)

    def adopt(self, dep_id: int, *, state: str, cooled_until: float, last_error: str, last_error_at: float,
              changed_at: float, auth_failed: bool = False) -> None:
        """Merge a state another process published, if it is newer than ours."""
        h = self.health.setdefault(dep_id, Health())
        if changed_at > h.changed_at:
            h.state = "cooling" if state == "cooling" else "healthy"
            h.auth_failed = auth_failed
            h.cooled_until, h.changed_at = cooled_until, changed_at
            h.last_error, h.last_error_at = last_error or h.last_error, last_error_at or h.last_error_at
            h.failures.clear()

    def seconds_until_usable(self, dep_ids) -> float | None:
        """When the first of these deployments leaves cooldown (None: one is usable or unknown)."""
        now, waits = self.clock(), []
        for dep_id in dep_ids:
            h = self.health.get(dep_id)
            if h is None or h.state != "cooling" or h.cooled_until <= now:
                return None
            waits.append(h.cooled_until - now)
        return min(waits) if waits else None

    def describe(self, dep_id: int) -> dict:
        h = self.health.get(dep_id)
        if h is None:
            return {"state": "healthy", "last_error": "", "last_error_at": None, "cooled_until": None}
        state = h.state
        if state == "cooling" and self.clock() >= h.cooled_until:
            state = "cooldown over (next request probes)"
        elif state != "cooling" and h.auth_failed:
            state = "auth_failed"
        return {"state": state, "last_error": h.last_error, "last_error_at": h.last_error_at or None,
                "cooled_until": h.cooled_until if h.state == "cooling" else None}


breaker = Breaker()
