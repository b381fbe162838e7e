"""The reconnect delays of the RabbitMQ connection supervisor."""

from __future__ import annotations

import pytest

from chatserver.broker.supervisor import backoff_delay


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.25), (1, 0.5), (3, 2.0), (6, 10.0)])
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    delay = backoff_delay(attempt, initial=0.25, cap=10.0, rand=lambda: 1.0)

    assert delay == ceiling


def test_the_delay_is_a_uniform_draw_below_the_ceiling() -> None:
    assert backoff_delay(2, initial=0.25, cap=10.0, rand=lambda: 0.5) == 0.5
    assert backoff_delay(2, initial=0.25, cap=10.0, rand=lambda: 0.0) == 0.0


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert backoff_delay(10_000, initial=0.25, cap=10.0, rand=lambda: 1.0) == 10.0
