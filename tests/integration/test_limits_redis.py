"""routing/resilience/limits.py RedisLimiter against the real Redis: limits hold across limiter
instances (as across gateway processes), parallel leases cannot drift (a Redis restart, a lost
leave), a dead Redis fails open, a hung one is skipped after one timeout.

Redis: TEST_REDIS_URL (default redis://127.0.0.1:6379/15); every key starts with
TEST_REDIS_PREFIX (default "gwtest:") plus a per-test id, and only those keys are deleted."""

import asyncio
import os
import time
import uuid

import pytest
import redis

from routing.resilience import limits
from routing.resilience.limits import Limited, RedisLimiter
from routing.resilience.redis_circuit import RedisCircuit

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = os.environ.get("TEST_REDIS_PREFIX", "gwtest:")


def redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_up(), reason=f"Redis is not running at {REDIS_URL}")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix():
    """This test's own key prefix; its keys (and only those) are deleted afterwards."""
    own = f"{PREFIX}{uuid.uuid4().hex[:12]}:"
    yield own
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=own + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def limiters(prefix):

    def make(clock=None, url=REDIS_URL, **kw):
        lim = RedisLimiter(url, clock or Clock(1_800_000_000.0), prefix=prefix, **kw)
        return lim

    return make


async def _close(*lims):
    for lim in lims:
        if lim._renewer is not None:
            lim._renewer.cancel()
        await lim.redis.aclose()


async def test_rpm_shared_between_two_limiters(limiters):
    clock = Clock(1_800_000_000.0)
    a, b = limiters(clock), limiters(clock)
    await a.hit("key:1", 3, None)
    await b.hit("key:1", 3, None)
    await a.hit("key:1", 3, None)
    with pytest.raises(Limited):
        await b.hit("key:1", 3, None)
    await _close(a, b)


async def test_tpm_and_parallel_shared(limiters):
    clock = Clock(1_800_000_000.0)
    a, b = limiters(clock), limiters(clock)
    await a.add_tokens("key:1", 500)
    with pytest.raises(Limited) as exc:
        await b.hit("key:1", None, 500)
    assert exc.value.what == "tokens-per-minute"
    lease = await a.enter("key:1", 1)
    with pytest.raises(Limited):
        await b.enter("key:1", 1)
    await a.leave("key:1", lease)
    await b.enter("key:1", 1)
    await _close(a, b)


async def test_a_redis_restart_cannot_loosen_max_parallel(limiters, prefix):
    lim = limiters()
    leases = [await lim.enter("key:1", 2), await lim.enter("key:1", 2)]
    redis.Redis.from_url(REDIS_URL).delete(f"{prefix}key:1:leases")  # what a restart without persistence does
    await lim.renew()  # the process still holds both: they are put back
    with pytest.raises(Limited):
        await lim.enter("key:1", 2)
    for lease in leases:  # leaves after the restart: no negative count
        await lim.leave("key:1", lease)
        await lim.leave("key:1", lease)
    await lim.enter("key:1", 2)
    await lim.enter("key:1", 2)
    with pytest.raises(Limited):
        await lim.enter("key:1", 2)
    await _close(lim)


async def test_a_lost_leave_frees_the_slot_when_its_lease_expires(limiters):
    clock = Clock(1_800_000_000.0)
    crashed, other = limiters(clock), limiters(clock)
    await crashed.enter("key:1", 1)  # its process dies: no leave, no renewal
    with pytest.raises(Limited):
        await other.enter("key:1", 1)
    clock.now += limits.LEASE_SECONDS + 1
    await other.enter("key:1", 1)
    await _close(crashed, other)


async def test_a_renewed_lease_outlives_its_first_expiry(limiters):
    clock = Clock(1_800_000_000.0)
    a, b = limiters(clock), limiters(clock)
    await a.enter("key:1", 1)  # a long stream
    clock.now += limits.LEASE_SECONDS - 1
    await a.renew()
    clock.now += limits.LEASE_SECONDS - 1
    with pytest.raises(Limited):
        await b.enter("key:1", 1)
    await _close(a, b)


async def test_unreachable_redis_fails_open(caplog):
    """No Redis: every limit lets requests through (a limit outage must not become a gateway
    outage), and ops are told."""
    lim = RedisLimiter("redis://127.0.0.1:1/0")
    with caplog.at_level("WARNING", logger="routing.resilience"):
        for _ in range(3):  # rpm=1 and tpm=1 would refuse the second with a Redis
            await lim.hit("key:x", 1, 1)
        assert await lim.enter("key:x", 1) is None  # no lease to hold, and not refused
        assert await lim.enter("key:x", 1) is None
        await lim.leave("key:x")
    await lim.redis.aclose()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "rate limiter unavailable" in messages or "Redis failed" in messages, messages


async def test_a_hung_redis_costs_one_timeout_then_is_skipped():
    accepted = []

    async def silent(reader, writer):  # accepts, reads, never answers
        accepted.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = Clock(100.0)
    lim = RedisLimiter(f"redis://127.0.0.1:{port}/0", circuit=RedisCircuit("test", skip_seconds=5, clock=clock))
    started = time.perf_counter()
    await lim.hit("key:x", 1, None)  # waits for the socket timeout, then fails open
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        await lim.hit("key:x", 1, None)
        await lim.enter("key:x", 1)
    skipped = time.perf_counter() - started
    assert first >= 0.4 and skipped < 0.1, (first, skipped)
    clock.now += 5  # skip over: one trial call waits again
    started = time.perf_counter()
    await lim.hit("key:x", 1, None)
    assert time.perf_counter() - started >= 0.4
    server.close()
    for writer in accepted:
        writer.close()
    await lim.redis.aclose()
