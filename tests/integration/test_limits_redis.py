"""routing/limits.py RedisLimiter against the real Redis: limits hold across limiter
instances (as across gateway processes), and a dead Redis fails open."""

import uuid

import pytest
import redis

from routing.resilience.limits import Limited, RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_rpm_shared_between_two_limiters():
    scope = f"key:{uuid.uuid4().hex}"
    clock = Clock(1_800_000_000.0)
    a, b = RedisLimiter(REDIS_URL, clock), RedisLimiter(REDIS_URL, clock)
    await a.hit(scope, 3, None)
    await b.hit(scope, 3, None)
    await a.hit(scope, 3, None)
    with pytest.raises(Limited):
        await b.hit(scope, 3, None)
    await a.redis.aclose()
    await b.redis.aclose()


async def test_tpm_and_parallel_shared():
    scope = f"key:{uuid.uuid4().hex}"
    clock = Clock(1_800_000_000.0)
    a, b = RedisLimiter(REDIS_URL, clock), RedisLimiter(REDIS_URL, clock)
    await a.add_tokens(scope, 500)
    with pytest.raises(Limited) as exc:
        await b.hit(scope, None, 500)
    assert exc.value.what == "tokens-per-minute"
    await a.enter(scope, 1)
    with pytest.raises(Limited):
        await b.enter(scope, 1)
    await a.leave(scope)
    await b.enter(scope, 1)
    await a.redis.aclose()
    await b.redis.aclose()


async def test_unreachable_redis_fails_open():
    lim = RedisLimiter("redis://127.0.0.1:1/0")
    await lim.hit("key:x", 1, 1)
    await lim.hit("key:x", 1, 1)
    await lim.enter("key:x", 1)
    await lim.enter("key:x", 1)
