from __future__ import annotations

import pytest

from chatserver.history import RoomHistory, StoredMessage
from chatserver.ids import MessageId

EPOCH = 1_700_000_000_000


def at(offset: int, epoch: int = EPOCH) -> MessageId:
    return MessageId(epoch, offset)


def message(offset: int, ref: str | None = None) -> StoredMessage:
    frame = f"m{offset}".encode()
    return StoredMessage(
        epoch=EPOCH,
        offset=offset,
        key=("c", ref or f"r{offset}"),
        frame=frame,
        wire=b"\x81\x02" + frame,
    )


def filled(size: int, offsets: range | list[int]) -> RoomHistory:
    history = RoomHistory(size, max_bytes=1 << 30, epoch=EPOCH)
    for offset in offsets:
        history.add(message(offset))
    return history


def test_without_since_returns_the_window_in_order() -> None:
    recovery = filled(3, range(5)).recover(None)
    assert recovery.frames == [b"m2", b"m3", b"m4"]
    assert not recovery.truncated


def test_since_returns_exactly_the_later_messages() -> None:
    recovery = filled(10, range(6)).recover(at(3))
    assert recovery.frames == [b"m4", b"m5"]
    assert not recovery.truncated


def test_since_the_newest_returns_nothing() -> None:
    assert filled(10, range(6)).recover(at(5)).frames == []


def test_since_older_than_the_window_is_truncated() -> None:
    recovery = filled(3, range(10)).recover(at(4))
    assert recovery.frames == [b"m7", b"m8", b"m9"]
    assert recovery.truncated


def test_since_the_last_evicted_is_complete() -> None:
    recovery = filled(3, range(10)).recover(at(6))
    assert recovery.frames == [b"m7", b"m8", b"m9"]
    assert not recovery.truncated


def test_gaps_in_offsets_do_not_count_as_truncation() -> None:
    recovery = filled(10, [3, 7, 20]).recover(at(4))
    assert recovery.frames == [b"m7", b"m20"]
    assert not recovery.truncated


def test_dedupe_covers_exactly_the_window() -> None:
    history = filled(2, range(3))
    assert history.find(("c", "r0")) is None
    found = history.find(("c", "r2"))
    assert found is not None
    assert found.id == f"{EPOCH}-2"


def test_out_of_order_offsets_are_refused() -> None:
    history = filled(5, range(3))
    with pytest.raises(ValueError, match="not after"):
        history.add(message(2, ref="new"))


def test_duplicate_keys_are_refused() -> None:
    history = filled(5, range(3))
    with pytest.raises(ValueError, match="duplicate"):
        history.add(message(9, ref="r1"))


def test_last_offset_tracks_the_newest_message_seen() -> None:
    assert RoomHistory(2, max_bytes=1 << 30, epoch=EPOCH).last_offset is None
    assert filled(2, [4, 9, 12]).last_offset == 12


@pytest.mark.parametrize(
    "since",
    [at(3, epoch=EPOCH - 1), at(3, epoch=EPOCH + 1), at(3, epoch=0), at(6)],
    ids=["older-epoch", "newer-epoch", "before-epochs", "past-the-end"],
)
def test_a_since_not_in_this_log_gets_the_whole_window_marked_reset(since: MessageId) -> None:
    recovery = filled(3, range(6)).recover(since)
    assert recovery.frames == [b"m3", b"m4", b"m5"]
    assert recovery.reset
    assert not recovery.truncated


def test_a_since_in_an_empty_log_is_a_reset() -> None:
    recovery = RoomHistory(3, max_bytes=1 << 30, epoch=EPOCH).recover(at(0))
    assert (recovery.frames, recovery.reset) == ([], True)


def test_a_since_in_this_log_is_no_reset() -> None:
    assert not filled(3, range(6)).recover(at(5)).reset
    assert not filled(3, range(6)).recover(None).reset


def test_a_message_of_another_epoch_is_refused() -> None:
    history = RoomHistory(3, max_bytes=1 << 30, epoch=EPOCH + 1)
    with pytest.raises(ValueError, match="epoch"):
        history.add(message(0))


def sized(offset: int, text_bytes: int) -> StoredMessage:
    frame = b"x" * text_bytes
    return StoredMessage(
        epoch=EPOCH, offset=offset, key=("c", f"r{offset}"), frame=frame, wire=b"\x81" + frame
    )


def test_the_window_keeps_no_more_bytes_than_its_bound_and_the_newest_always() -> None:
    one = sized(0, 1000).size
    history = RoomHistory(100, max_bytes=3 * one, epoch=EPOCH)
    for offset in range(10):
        history.add(sized(offset, 1000))
        assert history.size_bytes <= 3 * one

    recovery = history.recover(None)
    assert len(recovery.frames) == 3  # far below the 100 messages the count allows
    # Messages past the bound left the window as if by count: a `since` before them is told.
    assert history.recover(at(5)).truncated
    # One message larger than the whole bound still stays: the window is the dedupe window.
    history.add(sized(10, 10 * one))
    assert [len(frame) for frame in history.recover(None).frames] == [10 * one]
    assert history.find(("c", "r10")) is not None
    assert history.find(("c", "r9")) is None
