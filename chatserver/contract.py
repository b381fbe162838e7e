"""What the operator, the chat server and the browser UI must agree on, written once.

- The environment of `chatserver backend` and `chatserver frontend` (DESIGN section 3): every
  variable's name (`Env`) and the names each process reads (`BACKEND_ENV`, `FRONTEND_ENV`).
  `settings.py` reads the environment by these names and nothing else; the operator's builders
  write them; `tests/unit/test_contract.py` feeds what the builders write to the reader.
- The chat settings' defaults and the least values the server accepts, which the operator's
  spec and CRD take as their defaults and minima, and the shapes the server accepts for room
  names, browser origins and cluster names, which the CRD checks at admission.
- The protocol version, the room-name rule and the shape of message ids, which the client
  protocol and the UI check.

The UI cannot import Python: `static/js/contract.js` is generated from this module and
`closecodes.py` (`python -m chatserver.contract > chatserver/static/js/contract.js`), and a unit
test keeps the committed file current, as one does for `crds/`.

Pure values; `chatoperator` imports this module, so it imports nothing but `closecodes`.
"""

from __future__ import annotations

import json
import sys
from typing import Final, Literal, get_args

from chatserver import closecodes

PROTOCOL_VERSION: Final = 1
"""`welcome.protocol` (DESIGN section 4)."""


class Env:
    """Names of the environment variables the chat server reads (README, Configuration)."""

    PORT: Final = "PORT"
    HOST: Final = "HOST"
    POD_NAME: Final = "POD_NAME"
    RABBITMQ_URL: Final = "RABBITMQ_URL"
    RABBITMQ_URL_FILE: Final = "RABBITMQ_URL_FILE"
    CHAT_CLUSTER: Final = "CHAT_CLUSTER"
    CHAT_ROOMS: Final = "CHAT_ROOMS"
    CHAT_HISTORY_SIZE: Final = "CHAT_HISTORY_SIZE"
    CHAT_HISTORY_PAGE_MAX: Final = "CHAT_HISTORY_PAGE_MAX"
    CHAT_HISTORY_MAX_BYTES: Final = "CHAT_HISTORY_MAX_BYTES"
    CHAT_MAX_MESSAGE_BYTES: Final = "CHAT_MAX_MESSAGE_BYTES"
    CHAT_RATE_PER_SECOND: Final = "CHAT_RATE_PER_SECOND"
    CHAT_RATE_BURST: Final = "CHAT_RATE_BURST"
    CHAT_DRAIN_SECONDS: Final = "CHAT_DRAIN_SECONDS"
    CHAT_ROOM_MAX_BYTES: Final = "CHAT_ROOM_MAX_BYTES"
    CHAT_ALLOWED_ORIGINS: Final = "CHAT_ALLOWED_ORIGINS"
    CHAT_MAX_FRAME_BYTES: Final = "CHAT_MAX_FRAME_BYTES"
    CHAT_OUTBOX_BYTES: Final = "CHAT_OUTBOX_BYTES"
    CHAT_MAX_ROOMS_PER_CONNECTION: Final = "CHAT_MAX_ROOMS_PER_CONNECTION"
    CHAT_MAX_ROOMS_PER_CLIENT: Final = "CHAT_MAX_ROOMS_PER_CLIENT"
    CHAT_ROOM_CREATION: Final = "CHAT_ROOM_CREATION"
    CHAT_MEMBERS_LIST_MAX: Final = "CHAT_MEMBERS_LIST_MAX"
    CHAT_TYPING_INTERVAL_SECONDS: Final = "CHAT_TYPING_INTERVAL_SECONDS"
    CHAT_MEMORY_MAX_ROOMS: Final = "CHAT_MEMORY_MAX_ROOMS"
    CHAT_MAX_CONNECTIONS: Final = "CHAT_MAX_CONNECTIONS"
    CHAT_MAX_CONNECTIONS_PER_IP: Final = "CHAT_MAX_CONNECTIONS_PER_IP"
    CHAT_HANDSHAKE_TIMEOUT_SECONDS: Final = "CHAT_HANDSHAKE_TIMEOUT_SECONDS"
    CHAT_AUTH: Final = "CHAT_AUTH"
    CHAT_AUTH_SECRET: Final = "CHAT_AUTH_SECRET"
    CHAT_AUTH_PUBLIC_KEY: Final = "CHAT_AUTH_PUBLIC_KEY"
    CHAT_AUTH_SECRET_FILE: Final = "CHAT_AUTH_SECRET_FILE"
    CHAT_AUTH_PUBLIC_KEY_FILE: Final = "CHAT_AUTH_PUBLIC_KEY_FILE"
    CHAT_AUTH_LEEWAY_SECONDS: Final = "CHAT_AUTH_LEEWAY_SECONDS"
    BACKEND_URL: Final = "BACKEND_URL"


LISTEN_ENV: Final = frozenset(
    {Env.CHAT_MAX_CONNECTIONS, Env.CHAT_MAX_CONNECTIONS_PER_IP, Env.CHAT_HANDSHAKE_TIMEOUT_SECONDS}
)
"""What every process reads about its listening socket: connection caps, handshake timeout."""

BACKEND_ENV: Final = (
    frozenset(
        {
            Env.PORT,
            Env.HOST,
            Env.POD_NAME,
            Env.RABBITMQ_URL,
            Env.RABBITMQ_URL_FILE,
            Env.CHAT_CLUSTER,
            Env.CHAT_ROOMS,
            Env.CHAT_HISTORY_SIZE,
            Env.CHAT_HISTORY_PAGE_MAX,
            Env.CHAT_HISTORY_MAX_BYTES,
            Env.CHAT_MAX_MESSAGE_BYTES,
            Env.CHAT_RATE_PER_SECOND,
            Env.CHAT_RATE_BURST,
            Env.CHAT_DRAIN_SECONDS,
            Env.CHAT_ROOM_MAX_BYTES,
            Env.CHAT_ALLOWED_ORIGINS,
            Env.CHAT_MAX_FRAME_BYTES,
            Env.CHAT_OUTBOX_BYTES,
            Env.CHAT_MAX_ROOMS_PER_CONNECTION,
            Env.CHAT_MAX_ROOMS_PER_CLIENT,
            Env.CHAT_ROOM_CREATION,
            Env.CHAT_MEMBERS_LIST_MAX,
            Env.CHAT_TYPING_INTERVAL_SECONDS,
            Env.CHAT_MEMORY_MAX_ROOMS,
            Env.CHAT_AUTH,
            Env.CHAT_AUTH_SECRET,
            Env.CHAT_AUTH_PUBLIC_KEY,
            Env.CHAT_AUTH_SECRET_FILE,
            Env.CHAT_AUTH_PUBLIC_KEY_FILE,
            Env.CHAT_AUTH_LEEWAY_SECONDS,
        }
    )
    | LISTEN_ENV
)
"""Everything `chatserver backend` (and `dev`) reads."""

FRONTEND_ENV: Final = (
    frozenset(
        {
            Env.PORT,
            Env.HOST,
            Env.BACKEND_URL,
            Env.CHAT_ALLOWED_ORIGINS,
            Env.CHAT_DRAIN_SECONDS,
            Env.CHAT_OUTBOX_BYTES,
        }
    )
    | LISTEN_ENV
)
"""Everything `chatserver frontend` reads: no chat setting, no broker, no token key."""

# Defaults, and the least value the server accepts where a spec field sets the variable.

DEFAULT_BACKEND_PORT: Final = 3000
DEFAULT_FRONTEND_PORT: Final = 8080
DEFAULT_CLUSTER: Final = "chat"
DEFAULT_ROOMS: Final = ("general",)
DEFAULT_HISTORY_SIZE: Final = 100
MIN_HISTORY_SIZE: Final = 1
"""A backend keeps at least one message per room: its window is also the dedupe window."""
DEFAULT_HISTORY_MAX_BYTES: Final = 1024 * 1024
"""Bytes one room's window may hold on a backend (`CHAT_HISTORY_MAX_BYTES`), beyond which its
oldest messages leave the window before `historySize` is reached: what a backend holds per
followed room is bounded by configuration, not by what clients send. The operator derives it
from the backend's memory and `chat.maxRooms`."""
MIN_HISTORY_MAX_BYTES: Final = 64 * 1024
MAX_HISTORY_PAGE: Final = 1000
"""The most `CHAT_HISTORY_PAGE_MAX` may be: messages of one `older` page, each up to
`maxMessageBytes`, held by the backend at once."""
DEFAULT_MAX_MESSAGE_BYTES: Final = 4096
MIN_MAX_MESSAGE_BYTES: Final = 1
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024
"""The hard limit of one client frame (`CHAT_MAX_FRAME_BYTES`): a frame of this size is
accepted, a larger one closes the connection with 1009."""
DEFAULT_MAX_CONNECTIONS: Final = 10_000
"""Open TCP connections per process (`CHAT_MAX_CONNECTIONS`), lowered at start to what the
process's file descriptor limit allows; more are answered 503 and closed."""
MIN_MAX_CONNECTIONS: Final = 1
DEFAULT_MAX_CONNECTIONS_PER_IP: Final = 500
"""Open TCP connections from one client address (`CHAT_MAX_CONNECTIONS_PER_IP`, 0 = no cap).
Generous, as many people may share one address (NAT, a proxy); the operator turns it off on
backends, whose clients are the frontend pods."""
MAX_CONNECTIONS_CRD_LIMIT: Final = 1_000_000
"""The CRD's maximum of both caps."""
DEFAULT_HANDSHAKE_TIMEOUT_SECONDS: Final = 10
"""Seconds a new connection has to send a complete request head
(`CHAT_HANDSHAKE_TIMEOUT_SECONDS`); an idle or half-sent request is dropped after it."""
DEFAULT_OUTBOX_BYTES: Final = 1024 * 1024
"""Bytes waiting for one client (`CHAT_OUTBOX_BYTES`) before a backend, or the frontend's relay,
cuts it with 4008."""
SEND_FRAME_OVERHEAD_BYTES: Final = 1024
"""What a `send` frame holds besides its text: type, room (64), ref (128), keys and quotes."""


def max_message_bytes_for(max_frame_bytes: int) -> int:
    """The largest `CHAT_MAX_MESSAGE_BYTES` a frame limit leaves room for. JSON escapes every
    `"`, `\\`, newline and tab with a second byte, so a text at the limit still fits its frame
    even made only of those (other control characters take six bytes; nobody types them)."""
    return (max_frame_bytes - SEND_FRAME_OVERHEAD_BYTES) // 2


MAX_MAX_MESSAGE_BYTES: Final = max_message_bytes_for(DEFAULT_MAX_FRAME_BYTES)
"""The CRD's maximum of `chat.maxMessageBytes` (the operator keeps the default frame limit)."""
DEFAULT_RATE_PER_SECOND: Final = 10
DEFAULT_RATE_BURST: Final = 20
MIN_RATE_BURST: Final = 1
DEFAULT_DRAIN_SECONDS: Final = 10
DEFAULT_MAX_ROOMS_PER_CONNECTION: Final = 100
"""Rooms one connection may have joined at once (`CHAT_MAX_ROOMS_PER_CONNECTION`): as many as
`chat.rooms` may list (the CRD's maximum), so a client can always join every preset room, and
far above what a person follows in one tab; each joined room costs the backend a stream
consumer and every new name a RabbitMQ stream."""
DEFAULT_MAX_ROOMS_PER_CLIENT: Final = 200
"""Distinct rooms one client (token mode: one `sub`; open mode: one `client` id) may have
joined on one backend over all its connections (`CHAT_MAX_ROOMS_PER_CLIENT`): two tabs' worth
of different rooms; tabs that join the same rooms count each room once."""
MIN_MAX_ROOMS: Final = 1
MAX_MAX_ROOMS_CRD_LIMIT: Final = 10_000
"""The CRD's maximum of both room caps."""
RoomCreation = Literal["anyone", "preset"]
"""`CHAT_ROOM_CREATION`: who may create a room that does not exist yet (DESIGN section 7)."""
ROOM_CREATION_MODES: Final[tuple[RoomCreation, ...]] = get_args(RoomCreation)
DEFAULT_ROOM_CREATION: Final[RoomCreation] = "anyone"
DEFAULT_MEMBERS_LIST_MAX: Final = 50
"""People named per room in `members` frames and presence beats (`CHAT_MEMBERS_LIST_MAX`): a
screenful; a bigger room shows the first ones by name and its total."""
MAX_MEMBERS_LIST_MAX: Final = 1_000
"""The most `CHAT_MEMBERS_LIST_MAX` may be: every beat carries a list of this size per room."""
DEFAULT_TYPING_INTERVAL_SECONDS: Final = 2.0
"""Least seconds between two `typing` signals a connection has relayed for one room
(`CHAT_TYPING_INTERVAL_SECONDS`); more frequent ones are dropped without an error."""
TYPING_SHOWN_SECONDS: Final = 5.0
"""How long a client shows "is typing" after the last signal: more than two intervals, so one
lost or dropped signal does not make the indicator blink. The interval must stay below it."""
REACTIONS: Final = ("👍", "❤️", "😂", "🎉", "😮", "😢")
"""The emoji a `react` may name (issue 13): a small fixed set, so a message holds at most this
many reactions per person, and the picker and the chips fit one line on a phone."""
REACTION_NAMES_SHOWN: Final = 20
"""Names a client lists in a reaction chip's tooltip; the rest are counted ("and 7 others")."""
DIRECTORY_PAGE_MAX: Final = 50
"""Rooms of one `rooms` answer at most (the room directory, issue 13): a screenful; the answer's
`total` says how many matched, and `offset` pages on."""
DIRECTORY_QUERY_MAX_CHARS: Final = 64
"""The longest `rooms` query: a whole room name."""
DIRECTORY_KNOWN_MAX: Final = 10_000
"""Rooms a backend's directory remembers at most (about 1 MB): ten times the default
`chat.maxRooms`. Beyond it the room that has been empty longest is forgotten first; rooms in use
are always listed."""
DIRECTORY_SYNC_MAX: Final = 1_000
"""Empty rooms a backend names in one presence beat for a backend that just started (about
65 KB at most): what it learns of rooms nobody is in, so a rolling update keeps them listed."""
DIRECTORY_CACHE_SECONDS: Final = 2.0
"""How long a backend reuses its sorted directory listing before building it again from
presence: a crowd browsing rooms costs one sort per interval, not one per request."""
DM_ROOM_PREFIX: Final = "dm-"
DM_DIGEST_CHARS: Final = 40
"""Hex digits of a direct-message room's name after `DM_ROOM_PREFIX`: 160 bits of SHA-256 of
the pair of `sub`s (`dm.py`), far past any search for another pair with the same name."""
DM_ROOM_PATTERN: Final = f"{DM_ROOM_PREFIX}[0-9a-f]{{{DM_DIGEST_CHARS}}}"
"""The names reserved for direct messages, joined only with a `dm` frame (DESIGN section 4)."""
DEFAULT_MEMORY_MAX_ROOMS: Final = 1_000
"""Room logs the in-memory broker keeps before it forgets unfollowed ones
(`CHAT_MEMORY_MAX_ROOMS`): far more rooms than people trying `chatserver dev` use."""

# Room retention: each room's log is a RabbitMQ stream named `room_stream_prefix(cluster) + room`.

DEFAULT_ROOM_MAX_BYTES: Final = 2 * 1024 * 1024
"""Bytes a room's stream keeps by default (`CHAT_ROOM_MAX_BYTES`, the CRD's
`rabbitmq.retention.maxBytes`). A backend replays a room's whole stream on its first join there
(about 0.1 s per MiB), so retention is also the cost of that join."""
MAX_ROOM_MAX_BYTES: Final = 256 * 1024 * 1024
"""The CRD's maximum retention per room, and the `x-max-length-bytes` the operator has its
backends give new streams on its own broker, where its policy sets the retention in force."""
ROOM_SEGMENT_BYTES: Final = 256 * 1024
"""A room stream's segment size. Retention drops whole segments, never the one being written,
so a stream keeps between its retention minus one segment and its retention."""
ROOM_RECORD_OVERHEAD_BYTES: Final = 1024
"""What a stored message takes besides its text, rounded up: its record is about 210 bytes of
JSON around the text with the usual name, ref and pod (`interchange.encode_record`), 513 with
every field at its limit in ASCII, plus AMQP headers and the stream's framing. The CRD refuses
a retention below `historySize * (maxMessageBytes + this) + ROOM_SEGMENT_BYTES`."""


def room_stream_prefix(cluster: str) -> str:
    """The start of every room stream's name of the cluster `CHAT_CLUSTER` = `cluster`."""
    return f"chat.{cluster}.room."


# Shapes, as regular expressions matched against the whole value (Python `fullmatch`; the CRD and
# the UI anchor them with ^ and $).

ROOM_NAME_PATTERN: Final = "[a-z0-9][a-z0-9_-]{0,63}"
"""Room names (DESIGN section 4)."""
MAX_ROOM_NAME_CHARS: Final = 64
MAX_NAME_CHARS: Final = 64
MAX_SUB_CHARS: Final = 128
"""A token's `sub` (user id), and so a `dm`'s `with`."""
"""Display names: longer ones are cut to this many characters (code points)."""
ORIGIN_PATTERN: Final = r"https?://[^/\s,]+"
"""One browser origin of `CHAT_ALLOWED_ORIGINS` (a comma-separated list): scheme://host[:port]."""
MAX_CLUSTER_CHARS: Final = 180
"""`CHAT_CLUSTER` becomes part of AMQP names of at most 255 bytes: `chat.<cluster>.room.<room>`
with a room of 64 characters leaves 180. (The operator writes `<namespace>.<name>`: up to
63 + 1 + 54 characters, as a Service name `<name>-frontend` is at most 63.)"""
CLUSTER_PATTERN: Final = f"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_CLUSTER_CHARS - 1}}}"
MESSAGE_ID_PATTERN: Final = "(?:([0-9]{1,19})-)?([0-9]{1,19})"
"""A message id, `<epoch>-<offset>` (DESIGN section 4): group 1 the epoch, group 2 the offset.
Ids of the release before epochs were a bare offset (no group 1); they are read as epoch 0, which
no log has, so a `join` that names one gets the reset answer. 19 digits bound both numbers below
2**63 and a `since` to 39 characters."""


def render_js() -> str:
    """`static/js/contract.js`: what the UI shares with the server, as an ES module."""
    close = {k: v for k, v in vars(closecodes).items() if k.isupper() and type(v) is int}
    errors = {k: v for k, v in vars(closecodes).items() if k.isupper() and type(v) is str}
    lines = [
        "// Generated from chatserver/contract.py and chatserver/closecodes.py by",
        "// `python -m chatserver.contract > chatserver/static/js/contract.js`: edit those, not",
        "// this file (a unit test checks that it is current).",
        "",
        "/** `welcome.protocol` of the protocol this page speaks (DESIGN.md section 4). */",
        f"export const PROTOCOL_VERSION = {PROTOCOL_VERSION};",
        "",
        "/** Room names (DESIGN.md section 4). */",
        f"export const ROOM_NAME = /^{ROOM_NAME_PATTERN}$/;",
        f"export const MAX_ROOM_NAME_CHARS = {MAX_ROOM_NAME_CHARS};",
        "",
        "/** Direct-message rooms (joined with a `dm` frame), and the room directory's bounds. */",
        f"export const DM_ROOM = /^{DM_ROOM_PATTERN}$/;",
        f"export const DIRECTORY_PAGE_MAX = {DIRECTORY_PAGE_MAX};",
        f"export const DIRECTORY_QUERY_MAX_CHARS = {DIRECTORY_QUERY_MAX_CHARS};",
        "",
        "/** Message ids `<epoch>-<offset>`; a bare offset is an id from before epochs. */",
        f"export const MESSAGE_ID = /^{MESSAGE_ID_PATTERN}$/;",
        "",
        "/** Display names: at most this many characters once made safe. */",
        f"export const MAX_NAME_CHARS = {MAX_NAME_CHARS};",
        "",
        "/** Seconds between two `typing` frames for one room, and how long one is shown. */",
        f"export const TYPING_INTERVAL_SECONDS = {DEFAULT_TYPING_INTERVAL_SECONDS};",
        f"export const TYPING_SHOWN_SECONDS = {TYPING_SHOWN_SECONDS};",
        "",
        "/** The emoji a `react` may name, and the names a reaction's tooltip lists. */",
        f"export const REACTIONS = Object.freeze({_js_list(REACTIONS)});",
        f"export const REACTION_NAMES_SHOWN = {REACTION_NAMES_SHOWN};",
        "",
        "/** The per-connection token bucket of a server whose `welcome` does not say. */",
        f"export const DEFAULT_RATE = {{ per_second: {DEFAULT_RATE_PER_SECOND}, "
        f"burst: {DEFAULT_RATE_BURST} }};",
        "",
        "/** WebSocket close codes the server uses. */",
        _js_object("CLOSE", close),
        "",
        "/** Codes of `error` frames. */",
        _js_object("ERROR", errors),
    ]
    return "\n".join(lines) + "\n"


def _js_list(values: tuple[str, ...]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _js_object(name: str, values: dict[str, int] | dict[str, str]) -> str:
    body = "".join(f"  {key}: {json.dumps(value)},\n" for key, value in values.items())
    return f"export const {name} = Object.freeze({{\n{body}}});"


if __name__ == "__main__":
    sys.stdout.write(render_js())
