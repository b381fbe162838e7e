import orjson
import pytest

from bench.wire import (
    WIRES,
    Acked,
    CentrifugoWire,
    ChatWire,
    Delivered,
    Joined,
    Ready,
    Refused,
    Reply,
    SocketIOWire,
    WireError,
    decode_text,
    encode_text,
    encode_warmup,
    warmup_sender,
)


def _message(text: str, id: str = "1") -> str:
    return orjson.dumps(
        {"type": "message", "room": "r", "id": id, "user": "u", "text": text, "ts": 1.0}
    ).decode()


def test_chat_batched_frame_yields_every_event_in_order() -> None:
    frame = "\n".join(
        [
            '{"type":"welcome","protocol":1,"session":"s","user":"u","pod":"p","users_online":1}',
            '{"type":"joined","room":"r","members":1,"history":[],"truncated":false}',
            _message("12"),
            '{"type":"presence","users_online":2,"rooms":{"r":2}}',
            '{"type":"ack","ref":"m1-0","id":"1"}',
        ]
    )
    expected = [Ready(), Joined("r"), Delivered("12", "1"), Acked("m1-0", "1")]
    assert ChatWire().parse(frame) == expected


def test_chat_join_since_asks_for_the_missed_messages_and_gets_them_in_order() -> None:
    wire = ChatWire()
    assert orjson.loads(wire.join("r", seq=1)) == {"type": "join", "room": "r"}
    frame = orjson.loads(wire.join("r", seq=2, since="41"))
    assert frame == {"type": "join", "room": "r", "since": "41"}
    history = ",".join([_message("5", "42"), _message("6", "43")])
    joined = f'{{"type":"joined","room":"r","members":3,"history":[{history}],"truncated":true}}'
    replayed = (Delivered("5", "42"), Delivered("6", "43"))
    assert wire.parse(joined) == [Joined("r", replayed, truncated=True)]


def test_chat_error_frame_is_a_refusal_with_its_ref() -> None:
    frame = '{"type":"error","code":"unavailable","message":"broker away","ref":"m1-3"}'
    assert ChatWire().parse(frame) == [Refused("unavailable", "broker away", "m1-3")]


def test_chat_send_frame_follows_the_protocol() -> None:
    frame = orjson.loads(ChatWire().send(room="r", text="5", ref="m0-1", seq=9))
    assert frame == {"type": "send", "room": "r", "text": "5", "ref": "m0-1"}


def test_socketio_handshake_connects_the_default_namespace() -> None:
    wire = SocketIOWire()
    opened = '0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'
    assert wire.parse(opened) == [Reply("40")]
    assert wire.parse('40{"sid":"def"}') == [Ready()]


def test_socketio_ping_is_answered_with_pong() -> None:
    assert SocketIOWire().parse("2") == [Reply("3")]


def test_socketio_event_and_acks() -> None:
    wire = SocketIOWire()
    event = "42" + orjson.dumps(["message", {"room": "r", "id": "p-1", "text": "7"}]).decode()
    assert wire.parse(event) == [Delivered("7", "p-1")]
    assert wire.parse('4312[{"room":"r"}]') == [Joined("r")]
    assert wire.parse('4313[{"ref":"m2-0","id":"p-1"}]') == [Acked("m2-0", "p-1")]


def test_socketio_frames_carry_the_ack_id() -> None:
    wire = SocketIOWire()
    assert wire.join("r", seq=3) == '423["join","r"]'
    sent = wire.send(room="r", text="9", ref="m0-0", seq=4)
    assert sent.startswith("424")
    assert orjson.loads(sent[3:]) == ["send", {"room": "r", "text": "9", "ref": "m0-0"}]
    with pytest.raises(ValueError, match="no history"):
        wire.join("r", seq=5, since="p-1")


@pytest.mark.parametrize("frame", ['44{"message":"Unauthorized"}', "41", "1"])
def test_socketio_refusal_or_close_is_an_error(frame: str) -> None:
    with pytest.raises(WireError):
        SocketIOWire().parse(frame)


def test_text_carries_the_send_time_and_warmup_carries_its_sender() -> None:
    assert decode_text(encode_text(123456789)) == 123456789
    assert decode_text(encode_warmup(7)) is None
    assert warmup_sender(encode_warmup(7)) == 7


def test_centrifugo_opens_with_connect_and_is_ready_on_its_reply() -> None:
    wire = CentrifugoWire()
    assert orjson.loads(wire.hello(client_id="bench-3", seq=1) or "") == {
        "id": 1,
        "connect": {"name": "bench-3"},
    }
    assert wire.parse('{"id":1,"connect":{"client":"c","version":"6.9.1","ping":25}}') == [Ready()]


def test_centrifugo_replies_are_matched_to_their_commands_by_id() -> None:
    wire = CentrifugoWire()
    subscribe = orjson.loads(wire.join("r", seq=2))
    assert subscribe == {"id": 2, "subscribe": {"channel": "r"}}
    publish = orjson.loads(wire.send(room="r", text="5", ref="m0-1", seq=3))
    assert publish == {"id": 3, "publish": {"channel": "r", "data": {"text": "5"}}}
    # Replies name neither channel nor ref, and several may share a frame, in any order.
    frame = '{"id":3,"publish":{}}\n{"id":2,"subscribe":{"recoverable":true,"offset":4}}'
    assert wire.parse(frame) == [Acked("m0-1", ""), Joined("r")]


def test_centrifugo_publication_push_is_a_delivery_with_its_offset() -> None:
    push = '{"push":{"channel":"r","pub":{"data":{"text":"12"},"offset":7}}}'
    assert CentrifugoWire().parse(push) == [Delivered("12", "7")]


def test_centrifugo_empty_reply_is_a_ping_answered_with_an_empty_command() -> None:
    assert CentrifugoWire().parse("{}") == [Reply("{}")]


def test_centrifugo_errors_refuse_the_command_temporary_ones_as_unavailable() -> None:
    wire = CentrifugoWire()
    wire.join("r", seq=1)
    wire.send(room="r", text="1", ref="m0-0", seq=2)
    frame = (
        '{"id":1,"error":{"code":103,"message":"permission denied"}}\n'
        '{"id":2,"error":{"code":100,"message":"internal server error","temporary":true}}'
    )
    assert wire.parse(frame) == [
        Refused("103", "permission denied", None),
        Refused("unavailable", "internal server error", "m0-0"),
    ]


def test_centrifugo_disconnect_push_is_an_error() -> None:
    with pytest.raises(WireError, match="disconnected"):
        CentrifugoWire().parse('{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}')


def test_every_system_gets_a_fresh_wire_per_connection() -> None:
    for new_wire in WIRES.values():
        assert new_wire() is not new_wire()


def _subscribed(wire: CentrifugoWire, reply: str) -> list[object]:
    wire.join("r", seq=2)
    return list(wire.parse(reply))


def test_centrifugo_resubscribe_asks_to_recover_after_the_last_offset_in_the_epoch() -> None:
    wire = CentrifugoWire()
    _subscribed(wire, '{"id":2,"subscribe":{"recoverable":true,"epoch":"xY","offset":4}}')
    frame = orjson.loads(wire.join("r", seq=9, since="12"))
    assert frame == {
        "id": 9,
        "subscribe": {"channel": "r", "recover": True, "offset": 12, "epoch": "xY"},
    }


def test_centrifugo_recovered_reply_gives_back_the_missed_publications_in_order() -> None:
    wire = CentrifugoWire()
    _subscribed(wire, '{"id":2,"subscribe":{"recoverable":true,"epoch":"xY","offset":4}}')
    wire.join("r", seq=3, since="12")
    pubs = '[{"data":{"text":"5"},"offset":13},{"data":{"text":"6"},"offset":14}]'
    reply = (
        '{"id":3,"subscribe":{"recoverable":true,"epoch":"xY","offset":12,"positioned":true,'
        f'"was_recovering":true,"recovered":true,"publications":{pubs}}}}}'
    )
    replayed = (Delivered("5", "13"), Delivered("6", "14"))
    assert wire.parse(reply) == [Joined("r", replayed, truncated=False)]


@pytest.mark.parametrize(
    "result",
    [
        # Offset too old or epoch changed: `recovered` is false, so omitted.
        '{"recoverable":true,"epoch":"new","offset":40,"positioned":true,"was_recovering":true}',
        # A server that did not even try.
        '{"recoverable":true,"epoch":"xY","offset":40,"recovered":true}',
    ],
)
def test_centrifugo_recovery_not_answered_recovered_is_truncated(result: str) -> None:
    wire = CentrifugoWire()
    _subscribed(wire, '{"id":2,"subscribe":{"recoverable":true,"epoch":"xY","offset":4}}')
    wire.join("r", seq=3, since="12")
    assert wire.parse(f'{{"id":3,"subscribe":{result}}}') == [Joined("r", (), truncated=True)]


def test_centrifugo_recovery_keeps_the_newest_epoch_for_the_next_one() -> None:
    wire = CentrifugoWire()
    _subscribed(wire, '{"id":2,"subscribe":{"recoverable":true,"epoch":"xY"}}')
    wire.join("r", seq=3, since="1")
    wire.parse('{"id":3,"subscribe":{"recoverable":true,"epoch":"zZ","was_recovering":true}}')
    assert orjson.loads(wire.join("r", seq=4, since="2"))["subscribe"]["epoch"] == "zZ"


def test_centrifugo_cannot_recover_a_channel_it_never_subscribed() -> None:
    with pytest.raises(ValueError, match="no epoch"):
        CentrifugoWire().join("r", seq=1, since="3")
