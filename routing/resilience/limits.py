"""Rate limits: requests and tokens per minute, and parallel requests.

Scopes are strings: `key:<id>` for client keys, `dep:<id>` for deployments. Windows are
sliding (the previous minute's count, weighted by how much of it still overlaps, plus
the current minute's). Tokens are counted from real usage after each call.

Parallel requests are counted as leases, not as a counter: `enter(scope, limit)`
returns a lease id, `leave(scope, lease)` gives it back (a second `leave` of the same
lease changes nothing). In Redis a scope's leases are a sorted set (member: lease id,
score: expiry); the process renews the leases it holds every RENEW_SECONDS, so:
- a lost `leave` (Redis away at that moment, a task that never ran, a process that was
  killed) frees the slot when the lease expires, LEASE_SECONDS at most: no wedged limit;
- a Redis restart empties the set: the next renewal puts the living leases back, and
  leaves of leases Redis forgot are no-ops: the count never goes below what is in flight
  (the old INCR/DECR counter went to -6 and loosened the limit).
`leave(scope)` without a lease gives back one this process holds for that scope (the
callers of the first version did not keep leases).

With REDIS_URL the counters live in Redis, shared by every gateway process (one Lua
call per check); without it, in process memory. If Redis is unreachable the limiter
fails open and logs it: a limit outage must not become a gateway outage. After a
timeout or a connection error Redis is skipped for a while (routing/resilience/
redis_circuit.py): a hung Redis costs one socket timeout every few seconds, not one per
request.
"""

import asyncio
import itertools
import logging
import math
import os
import time
from collections import defaultdict

from routing.resilience.redis_circuit import RedisCircuit, Skipped

log = logging.getLogger(__name__)
WINDOW = 60.0
LEASE_SECONDS = 30.0  # a parallel-request lease nobody renews is gone after this long
RENEW_SECONDS = 10.0
_lease_ids = itertools.count()
_LEASE_PREFIX = f"{os.getpid()}-{os.urandom(4).hex()}-"


def new_lease() -> str:
    return _LEASE_PREFIX + str(next(_lease_ids))


class Limited(Exception):
    def __init__(self, scope: str, what: str, retry_after: float) -> None:
        super().__init__(f"{scope} over its {what} limit")
        self.scope, self.what, self.retry_after = scope, what, max(1, math.ceil(retry_after))


def _window(now: float) -> tuple[int, float]:
    index = int(now // WINDOW)
    return index, (now - index * WINDOW) / WINDOW  # fraction of the current window elapsed


class MemoryLimiter:
    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.counts: dict[tuple[str, str, int], float] = defaultdict(float)
        self.parallel: defaultdict[str, dict[str, None]] = defaultdict(dict)  # scope → leases (ordered)

    def _estimate(self, scope: str, kind: str, index: int, frac: float) -> float:
        return self.counts.get((scope, kind, index - 1), 0.0) * (1 - frac) + self.counts.get((scope, kind, index), 0.0)

    def _gc(self, index: int) -> None:
        if len(self.counts) > 10_000:
            for k in [k for k in self.counts if k[2] < index - 1]:
                del self.counts[k]

    async def hit(self, scope: str, rpm: int | None, tpm: int | None) -> None:
        """Count one request, or raise Limited (nothing counted) when rpm or tpm is used up."""
        index, frac = _window(self.clock())
        if tpm is not None and self._estimate(scope, "t", index, frac) >= tpm:
            raise Limited(scope, "tokens-per-minute", WINDOW * (1 - frac))
        if rpm is not None:
            if self._estimate(scope, "r", index, frac) + 1 > rpm:
                raise Limited(scope, "requests-per-minute", WINDOW * (1 - frac))
            self.counts[(scope, "r", index)] += 1
            self._gc(index)

    async def add_tokens(self, scope: str, tokens: int) -> None:
        index, _ = _window(self.clock())
        self.counts[(scope, "t", index)] += tokens

    async def enter(self, scope: str, limit: int) -> str:
        leases = self.parallel[scope]
        if len(leases) >= limit:
            raise Limited(scope, "parallel-requests", 1)
        lease = new_lease()
        leases[lease] = None
        return lease

    async def leave(self, scope: str, lease: str | None = None) -> None:
        leases = self.parallel.get(scope)
        if not leases:
            return
        if lease is None:
            lease = next(iter(leases))
        leases.pop(lease, None)
        if not leases:
            del self.parallel[scope]


_HIT = """
local limit_r = tonumber(ARGV[1]); local limit_t = tonumber(ARGV[2]); local frac = tonumber(ARGV[3])
if limit_t >= 0 then
  local t = tonumber(redis.call('GET', KEYS[3]) or '0') * (1 - frac) + tonumber(redis.call('GET', KEYS[4]) or '0')
  if t >= limit_t then return 2 end
end
if limit_r >= 0 then
  local r = tonumber(redis.call('GET', KEYS[1]) or '0') * (1 - frac) + tonumber(redis.call('GET', KEYS[2]) or '0')
  if r + 1 > limit_r then return 1 end
  redis.call('INCR', KEYS[2]); redis.call('EXPIRE', KEYS[2], 150)
end
return 0
"""
_ENTER = """
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(2 * tonumber(ARGV[3])))
return 1
"""
_RENEW = """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, tonumber(ARGV[1]), ARGV[i + 2])
  redis.call('EXPIRE', key, math.ceil(2 * tonumber(ARGV[2])))
end
return #KEYS
"""


def _unavailable(what: str, scope: str, exc: Exception) -> None:
    if not isinstance(exc, Skipped):  # skipped: the circuit logged the failure once
        log.warning("rate limiter unavailable, %s %s: %s", what, scope, exc)


class RedisLimiter:
    def __init__(self, url: str, clock=time.time, *, prefix: str = "gw:", circuit: RedisCircuit | None = None) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.clock = clock
        self.prefix = prefix
        self.circuit = circuit or RedisCircuit("rate limiter")
        self.held: dict[str, str] = {}  # lease → scope, renewed until left
        self._renewer: asyncio.Task | None = None
        self._hit = self.redis.register_script(_HIT)
        self._enter = self.redis.register_script(_ENTER)
        self._renew = self.redis.register_script(_RENEW)

    def _key(self, scope: str, suffix: str) -> str:
        return f"{self.prefix}{scope}:{suffix}"

    async def hit(self, scope: str, rpm: int | None, tpm: int | None) -> None:
        index, frac = _window(self.clock())
        keys = [self._key(scope, f"r:{index - 1}"), self._key(scope, f"r:{index}"),
                self._key(scope, f"t:{index - 1}"), self._key(scope, f"t:{index}")]
        args = [-1 if rpm is None else rpm, -1 if tpm is None else tpm, frac]
        try:
            verdict = await self.circuit.call(lambda: self._hit(keys=keys, args=args))
        except Exception as exc:
            _unavailable("allowing", scope, exc)
            return
        if verdict:
            raise Limited(scope, "requests-per-minute" if verdict == 1 else "tokens-per-minute", WINDOW * (1 - frac))

    async def add_tokens(self, scope: str, tokens: int) -> None:
        index, _ = _window(self.clock())
        key = self._key(scope, f"t:{index}")

        async def add():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, tokens).expire(key, 150)
                return await pipe.execute()

        try:
            await self.circuit.call(add)
        except Exception as exc:
            _unavailable("tokens not counted for", scope, exc)

    async def enter(self, scope: str, limit: int) -> str | None:
        """A lease on one of `limit` parallel slots (None: Redis unavailable, allowed without one)."""
        lease = new_lease()
        args = [limit, self.clock(), LEASE_SECONDS, lease]
        try:
            ok = await self.circuit.call(lambda: self._enter(keys=[self._key(scope, "leases")], args=args))
        except Exception as exc:
            _unavailable("allowing", scope, exc)
            return None
        if not ok:
            raise Limited(scope, "parallel-requests", 1)
        self.held[lease] = scope
        self._ensure_renewer()
        return lease

    async def leave(self, scope: str, lease: str | None = None) -> None:
        if lease is None:  # callers that did not keep their lease: any of ours for this scope
            lease = next((held for held, s in self.held.items() if s == scope), None)
            if lease is None:
                return
        if self.held.pop(lease, None) is None:
            return  # never held, or already left
        try:
            await self.circuit.call(lambda: self.redis.zrem(self._key(scope, "leases"), lease))
        except Exception as exc:  # not renewed any more: it expires within LEASE_SECONDS
            _unavailable("lease expires by itself for", scope, exc)

    async def renew(self) -> None:
        """Extend every lease this process holds (and put back those a Redis restart lost)."""
        if not self.held:
            return
        leases = list(self.held.items())
        keys = [self._key(scope, "leases") for _, scope in leases]
        args = [self.clock() + LEASE_SECONDS, LEASE_SECONDS, *[lease for lease, _ in leases]]
        try:
            await self.circuit.call(lambda: self._renew(keys=keys, args=args))
        except Exception as exc:
            _unavailable("leases not renewed for", f"{len(leases)} request(s)", exc)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="limiter-lease-renewer")

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(RENEW_SECONDS)
            await self.renew()


_limiter = None


def limiter():
    global _limiter
    if _limiter is None:
        from django.conf import settings

        _limiter = (RedisLimiter(settings.REDIS_URL, prefix=settings.GATEWAY["REDIS_PREFIX"]) if settings.REDIS_URL
                    else MemoryLimiter())
    return _limiter
