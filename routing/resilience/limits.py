"""Rate limits: requests and tokens per minute, and parallel requests.

Scopes are strings: `key:<id>` for client keys, `dep:<id>` for deployments. Windows are
sliding (the previous minute's count, weighted by how much of it still overlaps, plus
the current minute's). Tokens are counted from real usage after each call.

With REDIS_URL the counters live in Redis, shared by every gateway process (one Lua
call per check); without it, in process memory. If Redis is unreachable the limiter
fails open and logs it: a limit outage must not become a gateway outage.
"""

import logging
import math
import time
from collections import defaultdict

log = logging.getLogger(__name__)
WINDOW = 60.0


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
        self.parallel: defaultdict[str, int] = defaultdict(int)

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

    async def enter(self, scope: str, limit: int) -> None:
        if self.parallel[scope] >= limit:
            raise Limited(scope, "parallel-requests", 1)
        self.parallel[scope] += 1

    async def leave(self, scope: str) -> None:
        self.parallel[scope] = max(0, self.parallel[scope] - 1)


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
local n = redis.call('INCR', KEYS[1]); redis.call('EXPIRE', KEYS[1], 3600)
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]); return 0 end
return 1
"""


class RedisLimiter:
    def __init__(self, url: str, clock=time.time) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.clock = clock
        self._hit = self.redis.register_script(_HIT)
        self._enter = self.redis.register_script(_ENTER)

    async def hit(self, scope: str, rpm: int | None, tpm: int | None) -> None:
        index, frac = _window(self.clock())
        keys = [f"gw:{scope}:r:{index - 1}", f"gw:{scope}:r:{index}", f"gw:{scope}:t:{index - 1}",
                f"gw:{scope}:t:{index}"]
        try:
            verdict = await self._hit(keys=keys, args=[-1 if rpm is None else rpm, -1 if tpm is None else tpm, frac])
        except Exception as exc:
            log.warning("rate limiter unavailable, allowing %s: %s", scope, exc)
            return
        if verdict:
            raise Limited(scope, "requests-per-minute" if verdict == 1 else "tokens-per-minute", WINDOW * (1 - frac))

    async def add_tokens(self, scope: str, tokens: int) -> None:
        index, _ = _window(self.clock())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(f"gw:{scope}:t:{index}", tokens).expire(f"gw:{scope}:t:{index}", 150)
                await pipe.execute()
        except Exception as exc:
            log.warning("rate limiter unavailable, tokens of %s not counted: %s", scope, exc)

    async def enter(self, scope: str, limit: int) -> None:
        try:
            ok = await self._enter(keys=[f"gw:{scope}:p"], args=[limit])
        except Exception as exc:
            log.warning("rate limiter unavailable, allowing %s: %s", scope, exc)
            return
        if not ok:
            raise Limited(scope, "parallel-requests", 1)

    async def leave(self, scope: str) -> None:
        try:
            await self.redis.decr(f"gw:{scope}:p")
        except Exception as exc:
            log.warning("rate limiter unavailable, parallel count of %s not released: %s", scope, exc)


_limiter = None


def limiter():
    global _limiter
    if _limiter is None:
        from django.conf import settings

        _limiter = RedisLimiter(settings.REDIS_URL) if settings.REDIS_URL else MemoryLimiter()
    return _limiter
