"""routing/resilience/breaker.py: cooldown after N failures in a window, one probe, Retry-After."""

from routing.resilience.breaker import PROBE_TIMEOUT, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(b: Breaker, dep: int = 1, **kw) -> None:
    b.failure(dep, "HTTP 500", **({"threshold": 3, "window": 60, "cooldown": 30} | kw))


def test_cools_after_threshold_within_window_only():
    clock = Clock()
    b = Breaker(clock)
    fail(b)
    clock.now += 61  # the first failure falls out of the window
    fail(b)
    fail(b)
    assert b.usable(1)
    fail(b)
    assert not b.usable(1)
    assert b.describe(1)["state"] == "cooling" and b.describe(1)["last_error"] == "HTTP 500"


def test_one_probe_after_cooldown_then_heal_or_cool_again():
    clock = Clock()
    b = Breaker(clock)
    for _ in range(3):
        fail(b)
    clock.now += 31
    assert b.usable(1)
    assert b.begin(1) is True
    assert b.begin(1) is False  # a second request waits for the probe
    b.success(1)
    assert b.usable(1) and b.describe(1)["state"] == "healthy"
    for _ in range(3):
        fail(b)
    clock.now += 31
    assert b.begin(1)
    fail(b)  # the probe failed: straight back to cooling
    assert not b.usable(1)


def test_lost_probe_is_given_up():
    clock = Clock()
    b = Breaker(clock)
    for _ in range(3):
        fail(b)
    clock.now += 31
    assert b.begin(1)
    clock.now += PROBE_TIMEOUT + 1
    assert b.begin(1)


def test_retry_after_cools_at_once_for_that_long():
    clock = Clock()
    b = Breaker(clock)
    b.failure(1, "HTTP 429", threshold=3, window=60, cooldown=30, retry_after=5)
    assert not b.usable(1)
    clock.now += 5.1
    assert b.usable(1)


def test_adopt_takes_newer_shared_state_only():
    clock = Clock()
    b = Breaker(clock)
    b.adopt(7, state="cooling", cooled_until=clock.now + 10, last_error="reset", last_error_at=clock.now,
            changed_at=clock.now)
    assert not b.usable(7)
    b.adopt(7, state="healthy", cooled_until=0, last_error="", last_error_at=0, changed_at=clock.now - 5)
    assert not b.usable(7)  # older news is ignored
    b.adopt(7, state="healthy", cooled_until=0, last_error="", last_error_at=0, changed_at=clock.now + 1)
    assert b.usable(7)


def test_retry_after_is_capped_and_earliest_return_is_reported():
    from routing.resilience.breaker import MAX_RETRY_AFTER

    clock = Clock()
    b = Breaker(clock)
    b.failure(1, "HTTP 429", threshold=3, window=60, cooldown=30, retry_after=86_400)
    assert b.health[1].cooled_until == clock.now + MAX_RETRY_AFTER
    b.failure(2, "HTTP 429", threshold=3, window=60, cooldown=30, retry_after=5)
    assert b.seconds_until_usable([1, 2]) == 5
    assert b.seconds_until_usable([1, 2, 3]) is None  # 3 is usable


def test_retries_of_one_request_count_once():
    clock = Clock()
    b = Breaker(clock)
    for _ in range(5):  # one request retrying the same deployment
        fail(b, request_id="req_a")
    assert b.usable(1)
    fail(b, request_id="req_b")
    assert b.usable(1)
    fail(b, request_id="req_c")  # a third request: the threshold
    assert not b.usable(1)


def test_the_last_usable_deployment_of_a_group_is_never_cooled():
    clock = Clock()
    b = Breaker(clock)
    for i in range(5):
        fail(b, request_id=f"req_{i}", peers=[1])  # a group of one
    fail(b, retry_after=20, peers=[1])  # not even by a Retry-After
    assert b.usable(1) and b.describe(1)["last_error"] == "HTTP 500"
    assert b.seconds_until_usable([1]) is None


def test_a_deployment_cools_while_another_can_take_the_traffic():
    clock = Clock()
    b = Breaker(clock)
    for i in range(3):
        fail(b, dep=1, request_id=f"a{i}", peers=[1, 2])
    assert not b.usable(1) and b.usable(2)
    for i in range(3):  # now 2 is the last usable one
        fail(b, dep=2, request_id=f"b{i}", peers=[1, 2])
    assert b.usable(2)
    clock.now += 31  # 1's cooldown is over: it is usable again, so 2's next failure cools 2
    fail(b, dep=2, request_id="b3", peers=[1, 2])
    assert not b.usable(2) and b.usable(1)


def test_a_failed_probe_of_the_last_deployment_puts_it_back_in_service():
    clock = Clock()
    b = Breaker(clock)
    for i in range(3):
        fail(b, dep=1, request_id=f"a{i}", peers=[1, 2])
    clock.now += 31
    assert b.begin(1)  # 1 probes
    b.adopt(2, state="cooling", cooled_until=clock.now + 100, last_error="HTTP 503", last_error_at=clock.now,
            changed_at=clock.now)  # another process cooled 2 meanwhile
    fail(b, dep=1, request_id="probe", peers=[1, 2])
    assert b.usable(1) and b.describe(1)["state"] == "healthy"
