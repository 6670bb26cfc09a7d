"""routing/resilience/redis_circuit.py: open after a transport failure, one trial after the skip."""

import pytest
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from routing.resilience.redis_circuit import RedisCircuit, Skipped


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ok():
    return "ok"


async def hang():
    raise RedisTimeout("Timeout reading from socket")


async def test_a_timeout_opens_it_for_the_skip_then_one_trial():
    clock = Clock()
    circuit = RedisCircuit("t", skip_seconds=5, clock=clock)
    with pytest.raises(RedisTimeout):
        await circuit.call(hang)
    calls = []

    async def counted():
        calls.append(1)
        return "ok"

    for _ in range(3):
        with pytest.raises(Skipped):
            await circuit.call(counted)
    assert calls == []
    clock.now += 5
    assert circuit.allow() is True  # the trial
    assert circuit.allow() is False  # the others still skip while it is in flight
    circuit.succeeded()
    assert await circuit.call(counted) == "ok" and not circuit.is_open


async def test_a_failed_trial_opens_it_again():
    clock = Clock()
    circuit = RedisCircuit("t", skip_seconds=5, clock=clock)
    with pytest.raises(RedisTimeout):
        await circuit.call(hang)
    clock.now += 5
    with pytest.raises(RedisTimeout):
        await circuit.call(hang)
    with pytest.raises(Skipped):
        await circuit.call(ok)
    assert circuit.open_until == clock.now + 5


async def test_command_errors_do_not_open_it():
    async def bad():
        raise ResponseError("WRONGTYPE")

    circuit = RedisCircuit("t")
    with pytest.raises(ResponseError):
        await circuit.call(bad)
    assert await circuit.call(ok) == "ok"
