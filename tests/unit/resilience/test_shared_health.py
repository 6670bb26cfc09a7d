"""routing/resilience/shared_health.py: a hung Redis costs one timeout, then is skipped."""

import asyncio
import time

import pytest

from routing.resilience import shared_health
from routing.resilience.redis_circuit import RedisCircuit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hung_redis(settings, monkeypatch):
    writers = []

    async def silent(reader, writer):  # accepts, reads, never answers
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    settings.REDIS_URL = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    clock = Clock()
    monkeypatch.setattr(shared_health, "_redis", None)
    monkeypatch.setattr(shared_health, "circuit", RedisCircuit("test", skip_seconds=5, clock=clock))
    yield clock
    if shared_health._redis is not None:
        await shared_health._redis.aclose()
    server.close()
    for writer in writers:
        writer.close()


async def test_pull_and_admin_reads_skip_a_hung_redis(hung_redis):
    started = time.perf_counter()
    await shared_health.pull([1, 2])
    assert time.perf_counter() - started >= 0.4  # the one timeout
    started = time.perf_counter()
    for _ in range(10):
        await shared_health.pull([1, 2])
        assert shared_health.read_sync(1) is None
    assert time.perf_counter() - started < 0.1
    hung_redis.now += 5  # skip over: one trial
    started = time.perf_counter()
    await shared_health.pull([1])
    assert time.perf_counter() - started >= 0.4
