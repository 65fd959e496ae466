import math
import threading

import pytest

from mock_gateway.model._clock import ManualClock
from mock_gateway.model._ratelimit import RateLimit, RateLimiter, retry_after_seconds


def approx(seconds: float) -> object:
    # epoch-second floats are precise to ~0.2 µs
    return pytest.approx(seconds, abs=1e-6)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.mark.parametrize(
    ("rate", "burst", "field"),
    [(0, 1, "rate"), (-1, 1, "rate"), (math.nan, 1, "rate"), (math.inf, 1, "rate"), (1, 0, "burst")],
)
def test_rate_limit_validates_its_fields(rate: float, burst: int, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        RateLimit(rate, burst)


def test_no_limit_always_allows(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, None)
    assert limiter.limit is None
    assert all(limiter.acquire("k") == 0.0 for _ in range(1000))


def test_bucket_starts_full_then_waits_for_a_token(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=2, burst=3))
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == approx(0.5)
    clock.advance(0.2)
    assert limiter.acquire("k") == approx(0.3)  # a refused request takes nothing
    clock.advance(0.3)
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") == approx(0.5)


def test_refill_is_capped_at_burst(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=1, burst=2))
    clock.advance(3600)
    assert [limiter.acquire("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("k") == approx(1.0)
    clock.advance(1.5)  # one token and a half
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") == approx(0.5)


def test_fractional_steps_refill_exactly(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=30, burst=1))
    for _ in range(200):
        assert limiter.acquire("k") == 0.0
        assert limiter.acquire("k") > 0
        for _ in range(5):
            clock.advance(1 / 150)


def test_keys_have_separate_buckets(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=1, burst=1))
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_configure_replaces_the_limit_and_refills(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=1, burst=1))
    limiter.acquire("k")
    assert limiter.acquire("k") > 0
    limiter.configure(RateLimit(rate=10, burst=2))
    assert limiter.limit == RateLimit(rate=10, burst=2)
    assert [limiter.acquire("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("k") == approx(0.1)
    limiter.configure(None)
    assert limiter.acquire("k") == 0.0


@pytest.mark.parametrize(
    ("wait", "header"), [(0.0, 1), (0.001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (2.5, 3), (59.9, 60)]
)
def test_retry_after_rounds_up_to_a_whole_second(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header


def test_idle_buckets_are_forgotten(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=10, burst=5))
    for n in range(1000):
        limiter.acquire(f"key-{n}")
        clock.advance(0.01)
    # burst / rate = 0.5 s: only keys seen in the last half second can have a bucket that is not full
    assert len(limiter._full_at) <= 51
    clock.advance(0.5)
    limiter.acquire("other")
    assert list(limiter._full_at) == ["other"]


def test_a_key_not_full_does_not_block_forgetting_later_full_ones(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=1, burst=3))
    for _ in range(3):
        limiter.acquire("busy")  # full again in 3 s
    limiter.acquire("idle")  # full again in 1 s
    clock.advance(3)
    limiter.acquire("new")
    assert list(limiter._full_at) == ["new"]


def test_acquire_is_exact_across_threads(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, RateLimit(rate=1, burst=100))
    granted: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            granted.append(limiter.acquire("k") == 0.0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 100
