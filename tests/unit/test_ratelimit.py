from __future__ import annotations

import pytest

from chatserver.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=3, clock=FakeClock())
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]


def test_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    for _ in range(3):
        bucket.try_take()
    clock.now += 0.15  # one token and a half
    assert bucket.try_take()
    assert not bucket.try_take()


def test_refill_is_capped_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    clock.now += 3600
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]


def test_sustained_rate_is_honoured() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=1, clock=clock)
    allowed = 0
    for _ in range(1000):  # 10 seconds in 10 ms steps
        clock.now += 0.01
        allowed += bucket.try_take()
    assert 49 <= allowed <= 51


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=rate, burst=burst)
