"""Per-deployment circuit breaker: skip a deployment that keeps failing, then probe it.

healthy ──N failures within the window──▶ cooling ──cooldown over──▶ probing
   ▲                                                                 │
   └──────────── probe succeeds ◀────────────────────────────────────┘
                 probe fails ──▶ cooling again

A 429 with `Retry-After` cools the deployment for that long at once (it told us).
While probing, exactly one request is let through (a probe that never reports back
is given up after PROBE_TIMEOUT). The clock is injected; state is in-process, and
`routing.shared` mirrors it through Redis when REDIS_URL is set.
"""

import time
from collections import deque
from dataclasses import dataclass, field

PROBE_TIMEOUT = 60.0
MAX_RETRY_AFTER = 300.0  # a Retry-After longer than this cools the deployment for this long only


@dataclass(slots=True)
class Health:
    state: str = "healthy"  # healthy | cooling | probing
    failures: deque = field(default_factory=deque)
    cooled_until: float = 0.0
    probe_started: float = 0.0
    last_error: str = ""
    last_error_at: float = 0.0
    changed_at: float = 0.0  # when state last changed (newest wins when merging shared state)


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
        if h is not None and (h.state != "healthy" or h.failures):
            changed = h.state != "healthy"
            h.state, h.cooled_until = "healthy", 0.0
            h.failures.clear()
            if changed:
                self._changed(dep_id, h)

    def failure(self, dep_id: int, error: str, *, threshold: int, window: float, cooldown: float,
                retry_after: float | None = None) -> None:
        now = self.clock()
        h = self.health.setdefault(dep_id, Health())
        h.last_error, h.last_error_at = error, now
        h.failures.append(now)
        while h.failures and h.failures[0] < now - window:
            h.failures.popleft()
        if retry_after is not None and retry_after > 0:
            self._cool(dep_id, h, max(h.cooled_until, now + min(retry_after, MAX_RETRY_AFTER)))
        elif h.state == "probing" or len(h.failures) >= threshold:
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
              changed_at: float) -> None:
        """Merge a state another process published, if it is newer than ours."""
        h = self.health.setdefault(dep_id, Health())
        if changed_at > h.changed_at:
            h.state = "cooling" if state == "cooling" else "healthy"
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
        return {"state": state, "last_error": h.last_error, "last_error_at": h.last_error_at or None,
                "cooled_until": h.cooled_until if h.state == "cooling" else None}


breaker = Breaker()
