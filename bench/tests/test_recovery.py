import pytest

from bench.recovery import (
    POSITIONS,
    RECONNECT_BASE,
    RECONNECT_CAP,
    RECOVERS,
    PositionError,
    audit_stream,
    chat_position,
    full_jitter_delay,
    offset_position,
    resolve_acked,
    send_time_position,
)
from bench.wire import WIRES, Delivered, encode_text, encode_warmup


def test_full_jitter_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    almost_one = 1 - 1e-9
    ceilings = [full_jitter_delay(n, uniform=lambda: almost_one) for n in range(8)]
    assert ceilings[0] == pytest.approx(RECONNECT_BASE)
    assert ceilings[1] == pytest.approx(2 * RECONNECT_BASE)
    assert ceilings[-1] == pytest.approx(RECONNECT_CAP)
    assert full_jitter_delay(10_000, uniform=lambda: almost_one) == pytest.approx(RECONNECT_CAP)
    assert full_jitter_delay(3, uniform=lambda: 0.0) == 0.0


def test_full_jitter_draws_below_the_ceiling() -> None:
    delays = [full_jitter_delay(0) for _ in range(200)]
    assert all(0 <= delay < RECONNECT_BASE for delay in delays)
    assert len(set(delays)) > 1


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        full_jitter_delay(-1)


def test_every_acked_message_once_in_order_is_complete() -> None:
    audit = audit_stream([3, 5, 9, 12], acked={12, 3, 9, 5})
    assert audit.complete
    assert (audit.duplicates, audit.late, audit.missing, audit.unexpected) == (0, 0, 0, 0)


def test_a_replay_overlapping_the_live_stream_counts_duplicates() -> None:
    # Live 1 2 3, the connection drops, the join replays from 2 instead of after 3.
    audit = audit_stream([1, 2, 3, 2, 3, 4], acked=[1, 2, 3, 4])
    assert (audit.duplicates, audit.late, audit.missing) == (2, 0, 0)
    assert not audit.complete


def test_gaps_late_arrivals_and_strangers_are_counted_apart() -> None:
    audit = audit_stream([1, 4, 2, 7], acked=[1, 2, 3, 4, 5])
    assert audit.late == 1  # 2 after 4
    assert audit.missing == 2  # 3 and 5
    assert audit.unexpected == 1  # 7 was never acked
    assert audit.duplicates == 0
    assert not audit.complete


def test_nothing_received_misses_everything() -> None:
    assert audit_stream([], acked=[1, 2]).missing == 2
    assert audit_stream([], acked=[]).complete


def _chat(id: str) -> int:
    return chat_position(Delivered("1", id))


def test_chat_ids_order_by_offset_within_an_epoch_and_newer_epochs_after() -> None:
    assert _chat("41") < _chat("42")
    assert _chat("1700000000000-3") < _chat("1700000000000-10")
    assert _chat("42") < _chat("1700000000000-0")
    with pytest.raises(PositionError, match="not a chatserver id"):
        _chat("p-1")


def test_centrifugo_offsets_are_their_own_positions() -> None:
    assert offset_position(Delivered("5", "7")) == 7
    for bad in ("", "0", "-3", "x"):
        with pytest.raises(PositionError, match="offset"):
            offset_position(Delivered("5", bad))


def test_a_server_without_a_log_is_ordered_by_send_time() -> None:
    assert send_time_position(Delivered(encode_text(123), "python-socketio-1-9")) == 123
    with pytest.raises(PositionError, match="send time"):
        send_time_position(Delivered(encode_warmup(1), "python-socketio-1-1"))


def test_every_system_has_positions_and_those_with_history_recover() -> None:
    names = {new_wire().name for new_wire in WIRES.values()}
    assert set(POSITIONS) == names
    assert names - RECOVERS == {"python-socketio"}


def test_a_centrifugo_stream_is_audited_by_offset() -> None:
    # Live 3 4, the node dies, recovery gives back 5 6, live 7.
    acked = resolve_acked(["a", "b", "c", "d", "e"], {"a": 3, "b": 4, "c": 5, "d": 6, "e": 7})
    assert audit_stream([3, 4, 5, 6, 7], acked).complete
    assert audit_stream([3, 4, 7, 5, 6], acked).late == 2
    assert audit_stream([3, 4, 4, 5, 6, 7], acked).duplicates == 1


def test_acked_texts_that_reached_nobody_are_missing_for_everyone() -> None:
    acked = resolve_acked(["a", "lost", "b", "gone"], {"a": 1, "b": 2})
    assert acked[0::2] == [1, 2]
    assert acked[1] != acked[3]
    assert max(acked[1], acked[3]) < 0
    audit = audit_stream([1, 2], acked)
    assert (audit.missing, audit.unexpected, audit.late) == (2, 0, 0)
