"""Message ids: `<epoch>-<offset>`, the one order rule clients may rely on, the ids of old."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver.ids import LEGACY_EPOCH, MessageId, format_id, new_epoch, parse_id

numbers = st.integers(min_value=0, max_value=2**63 - 1)


@given(epoch=numbers, offset=numbers)
def test_an_id_round_trips(epoch: int, offset: int) -> None:
    assert parse_id(format_id(epoch, offset)) == MessageId(epoch, offset)
    assert str(MessageId(epoch, offset)) == format_id(epoch, offset)


def test_ids_order_by_offset_within_an_epoch_and_a_newer_epoch_after_every_older_id() -> None:
    texts = ["1700000000500-0", "1700000000000-12", "1700000000500-3", "1700000000000-2", "99"]
    ordered = sorted(texts, key=lambda text: parse_id(text) or MessageId(-1, -1))
    assert ordered == [
        "99",  # an id from before epochs is older than every id with one
        "1700000000000-2",
        "1700000000000-12",  # by number, not by text
        "1700000000500-0",  # a newer log's first message after an older log's last
        "1700000000500-3",
    ]


def test_an_id_from_before_epochs_reads_as_the_legacy_epoch() -> None:
    assert parse_id("42") == MessageId(LEGACY_EPOCH, 42)


@pytest.mark.parametrize(
    "text", ["", "-1", "1-", "a-1", "1-2-3", "1 -2", "1" * 20, f"{'1' * 20}-1", "\uff11-\uff12"]
)
def test_anything_else_is_not_an_id(text: str) -> None:
    assert parse_id(text) is None


def test_a_new_epoch_follows_the_one_it_replaces_even_on_a_clock_behind() -> None:
    assert new_epoch(1700000000.5) == 1700000000500
    assert new_epoch(1700000000.5, after=1700000000500) == 1700000000501
    assert new_epoch(1700000000.5, after=1800000000000) == 1800000000001
    assert new_epoch(0.0) > LEGACY_EPOCH
