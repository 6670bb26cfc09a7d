"""routing/resilience/limits.py: sliding-window rpm/tpm and parallel slots (memory backend)."""

import pytest

from routing.resilience.limits import Limited, MemoryLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_rpm_limit_and_retry_after():
    clock = Clock(6000.0)  # start of a window
    lim = MemoryLimiter(clock)
    for _ in range(3):
        await lim.hit("key:1", 3, None)
    with pytest.raises(Limited) as exc:
        await lim.hit("key:1", 3, None)
    assert exc.value.what == "requests-per-minute" and 1 <= exc.value.retry_after <= 60
    await lim.hit("key:2", 3, None)  # other scopes are independent


async def test_sliding_window_weights_the_previous_minute():
    clock = Clock(6000.0)
    lim = MemoryLimiter(clock)
    for _ in range(10):
        await lim.hit("s", 10, None)
    clock.now = 6060.0 + 30  # half way into the next window: ~5 of the 10 still count
    for _ in range(5):
        await lim.hit("s", 10, None)
    with pytest.raises(Limited):
        await lim.hit("s", 10, None)


async def test_tpm_counts_real_usage():
    lim = MemoryLimiter(Clock(6000.0))
    await lim.hit("s", None, 100)
    await lim.add_tokens("s", 100)
    with pytest.raises(Limited) as exc:
        await lim.hit("s", None, 100)
    assert exc.value.what == "tokens-per-minute"


async def test_parallel_slots():
    lim = MemoryLimiter()
    await lim.enter("k", 2)
    await lim.enter("k", 2)
    with pytest.raises(Limited):
        await lim.enter("k", 2)
    await lim.leave("k")
    await lim.enter("k", 2)


async def test_parallel_leases_leave_once():
    lim = MemoryLimiter()
    first = await lim.enter("k", 2)
    await lim.enter("k", 2)
    await lim.leave("k", first)
    await lim.leave("k", first)  # a repeated leave must not free a second slot
    await lim.enter("k", 2)
    with pytest.raises(Limited):
        await lim.enter("k", 2)


async def test_leave_without_a_lease_frees_one_of_the_scope():
    lim = MemoryLimiter()
    await lim.enter("k", 1)
    await lim.leave("k")
    await lim.enter("k", 1)
    await lim.leave("other")  # nothing held there: no effect
    with pytest.raises(Limited):
        await lim.enter("k", 1)
