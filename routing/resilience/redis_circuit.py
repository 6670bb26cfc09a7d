"""Skip a hung or unreachable Redis for a while instead of waiting on it every time.

Every Redis call of the limiter (routing/resilience/limits.py) and of the shared health
(routing/resilience/shared_health.py) goes through a `RedisCircuit`:

    closed ──a timeout or connection error──▶ open (SKIP_SECONDS: no call is made)
      ▲                                          │ skip over
      └──── the trial call succeeds ◀── half-open: ONE call tries; the others still skip
                 the trial fails ──▶ open again

While open, callers do what they do when Redis is down (limits fail open, health stays
local) at once, so a hung Redis costs one socket timeout per SKIP_SECONDS, not one per
request. The clock is injected (tests never sleep). Only transport failures open it: a
script or command error is the caller's to log.

Written here rather than taken from pybreaker or purgatory: it is this one gate, on
asyncio, with one trial call at a time, and the project's other breaker
(routing/resilience/breaker.py) is in-house too.
"""

import asyncio
import logging
import time

log = logging.getLogger(__name__)
SKIP_SECONDS = 5.0


def is_transport_failure(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError, TimeoutError))


class Skipped(Exception):
    """Redis was not called: the circuit is open (it failed a moment ago)."""


class RedisCircuit:
    def __init__(self, name: str, *, skip_seconds: float = SKIP_SECONDS, clock=time.monotonic) -> None:
        self.name, self.skip_seconds, self.clock = name, skip_seconds, clock
        self.open_until = 0.0  # 0: closed
        self.trial = False  # a half-open trial call is in flight
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return bool(self.open_until)

    def allow(self) -> bool:
        """May a call go to Redis now? (True claims the trial when half-open: report back.)"""
        if not self.open_until:
            return True
        if self.trial or self.clock() < self.open_until:
            return False
        self.trial = True
        return True

    def succeeded(self) -> None:
        if self.open_until:
            log.warning("%s: Redis answers again", self.name)
        self.open_until, self.trial = 0.0, False

    def failed(self, exc: BaseException) -> None:
        self.trial = False
        if not is_transport_failure(exc):
            return
        if not self.open_until:
            log.warning("%s: Redis failed (%s); skipping it for %.0f s", self.name, exc, self.skip_seconds)
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.open_until = self.clock() + self.skip_seconds

    async def call(self, make_call):
        """`await make_call()` through the circuit; raises `Skipped` while open, and whatever the
        call raised when it failed."""
        if not self.allow():
            raise Skipped(self.name)
        try:
            result = await make_call()
        except Exception as exc:
            self.failed(exc)
            raise
        self.succeeded()
        return result
