"""Settings of the three processes, read from the environment here and nowhere else.

The names, the defaults the operator shares and the shapes of values are `contract.py`'s (DESIGN
sections 3 and 7); the few extra knobs (`HOST`, `CHAT_ALLOWED_ORIGINS`, `CHAT_MAX_FRAME_BYTES`,
`CHAT_OUTBOX_BYTES`, `CHAT_AUTH_LEEWAY_SECONDS`) have defaults that need no setting in normal use.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from chatserver import contract
from chatserver.contract import Env, RoomCreation

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What the chat protocol allows, the same for every backend of one cluster."""

    rooms: tuple[str, ...] = contract.DEFAULT_ROOMS
    """Rooms that always exist (`CHAT_ROOMS`): listed in `welcome` and in `/api/stats`."""
    history_size: int = contract.DEFAULT_HISTORY_SIZE
    """Messages kept per room in each backend's window (`CHAT_HISTORY_SIZE`); `join` replays
    at most this many, and dedupe of resent `ref`s covers the same window."""
    history_max_bytes: int = contract.DEFAULT_HISTORY_MAX_BYTES
    """Bytes of one room's window at most (`CHAT_HISTORY_MAX_BYTES`, as `StoredMessage.size`
    counts them); past it the oldest messages leave the window, the newest always stays."""
    history_page_max: int = contract.DEFAULT_HISTORY_SIZE
    """Messages of one `older` page at most (`CHAT_HISTORY_PAGE_MAX`, unset: `history_size`,
    at most `contract.MAX_HISTORY_PAGE`): a client's `limit` is cut to it, so what one request
    makes the backend read and hold is bounded here, not by the client."""
    history_page_timeout_seconds: float = 5.0
    """How long an `older` request may take (its read of the room's log included) before it is
    answered `unavailable`."""
    max_message_bytes: int = contract.DEFAULT_MAX_MESSAGE_BYTES
    """Largest `text` of a `send`, in UTF-8 bytes (`CHAT_MAX_MESSAGE_BYTES`)."""
    rate_per_second: float = contract.DEFAULT_RATE_PER_SECOND
    """Token bucket refill per connection (`CHAT_RATE_PER_SECOND`), charged by every frame that
    touches the broker (`send`, `join`, `leave`, `older`); `ping` is free."""
    rate_burst: int = contract.DEFAULT_RATE_BURST
    """Token bucket size (`CHAT_RATE_BURST`): a client may briefly go this far above the rate."""
    drain_seconds: float = contract.DEFAULT_DRAIN_SECONDS
    """SIGTERM to exit, at most (`CHAT_DRAIN_SECONDS`); keep it below Kubernetes'
    terminationGracePeriodSeconds."""
    allowed_origins: frozenset[str] = frozenset()
    """Browser origins accepted on /ws besides the page's own (`CHAT_ALLOWED_ORIGINS`,
    comma-separated, e.g. `https://chat.example.com`)."""
    max_frame_bytes: int = contract.DEFAULT_MAX_FRAME_BYTES
    """Hard limit of one client frame (`CHAT_MAX_FRAME_BYTES`); larger closes with 1009. It must
    leave room for a `send` of `max_message_bytes` (`contract.max_message_bytes_for`)."""
    outbox_bytes: int = contract.DEFAULT_OUTBOX_BYTES
    """Bytes queued for one client before it is cut as a slow consumer (`CHAT_OUTBOX_BYTES`);
    1 MiB is Centrifugo's default and holds hundreds of messages."""
    max_rooms_per_connection: int = contract.DEFAULT_MAX_ROOMS_PER_CONNECTION
    """Rooms one connection may have joined at once (`CHAT_MAX_ROOMS_PER_CONNECTION`); a `join`
    beyond it is refused with `too_many_rooms`. Each joined room costs a stream consumer, each
    new name a stream; 100 covers every preset room (`chat.rooms` lists at most 100)."""
    max_rooms_per_client: int = contract.DEFAULT_MAX_ROOMS_PER_CLIENT
    """Distinct rooms one client may have joined on this backend over all its connections
    (`CHAT_MAX_ROOMS_PER_CLIENT`; the client is the token's `sub`, in open mode the `client`
    id), so opening more sockets does not multiply the per-connection cap; 200 is two tabs of
    different rooms."""
    room_creation: RoomCreation = contract.DEFAULT_ROOM_CREATION
    """Who may create a room that does not exist yet (`CHAT_ROOM_CREATION`): `anyone`, or
    `preset` (only `rooms` and rooms that already exist may be joined, unless a token's `create`
    claim says otherwise; DESIGN section 7)."""
    members_list_max: int = contract.DEFAULT_MEMBERS_LIST_MAX
    """People named per room in `members` frames (`CHAT_MEMBERS_LIST_MAX`, 1 to
    `contract.MAX_MEMBERS_LIST_MAX`): the first by name; the frame says the total beside. Every
    presence beat carries up to this many per room of its pod, so it bounds the beats too."""
    typing_interval_seconds: float = contract.DEFAULT_TYPING_INTERVAL_SECONDS
    """Least seconds between two `typing` signals one connection relays for one room
    (`CHAT_TYPING_INTERVAL_SECONDS`, below `contract.TYPING_SHOWN_SECONDS`); the ones between
    are dropped silently, so a client typing fast costs the broker one signal per interval."""
    heartbeat_seconds: float = 25.0
    """Server WebSocket ping interval; a client that does not answer is closed. 25 s stays under
    the usual 60 s idle timeout of load balancers."""
    presence_interval_seconds: float = 2.0
    """How often each backend publishes its presence beat; a pod is dropped after 3 missed beats,
    so a dead backend's users leave the counts in about 6-8 s (contract: within 10 s)."""
    ack_timeout_seconds: float = 10.0
    """How long a `send` waits for its record to come back from the broker before answering
    `unavailable` (the client then retries with the same `ref`)."""
    abuse_threshold: int = 50
    """Bad frames within `abuse_window_seconds` after which the connection is closed with 1008."""
    abuse_window_seconds: float = 10.0
    """The window of `abuse_threshold`: a client that errs now and then is never cut, one that
    keeps sending bad frames is, whatever it sends in between."""


MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HMAC key at least as long as the HS256 hash."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Who may open /ws (DESIGN section 7). The key itself is loaded and checked by `auth.py`."""

    mode: Literal["none", "jwt"] = "none"
    """`CHAT_AUTH`: `none` (open mode) or `jwt` (token mode)."""
    secret: str | None = field(default=None, repr=False)
    """`CHAT_AUTH_SECRET`: the HMAC key of HS256/384/512 tokens."""
    public_key: str | None = field(default=None, repr=False)
    """`CHAT_AUTH_PUBLIC_KEY`: a PEM public key (RSA, EC or Ed25519) of signed tokens."""
    key_file: str | None = None
    """`CHAT_AUTH_SECRET_FILE` or `CHAT_AUTH_PUBLIC_KEY_FILE`, instead of the variable: the file
    the key was read from. The verifier reads it again when it changes, so a rotated key (a
    Secret volume updated in place) takes effect without a restart."""
    leeway_seconds: float = 5.0
    """`CHAT_AUTH_LEEWAY_SECONDS`: clock skew tolerated between the token issuer and this server
    on `exp` and `nbf`; a session ends this long after its token's `exp`."""


@dataclass(frozen=True, slots=True)
class ListenSettings:
    """Who may hold a connection to a process, and for how long before saying what it wants
    (`listener.py`); every process has them."""

    max_connections: int = contract.DEFAULT_MAX_CONNECTIONS
    """Open connections at once (`CHAT_MAX_CONNECTIONS`); lowered at start to what the file
    descriptor limit leaves room for, so the process never runs out of them."""
    max_connections_per_ip: int = contract.DEFAULT_MAX_CONNECTIONS_PER_IP
    """Open connections from one client address (`CHAT_MAX_CONNECTIONS_PER_IP`); 0: no cap."""
    handshake_timeout_seconds: float = contract.DEFAULT_HANDSHAKE_TIMEOUT_SECONDS
    """Time for a new connection to send its whole request head
    (`CHAT_HANDSHAKE_TIMEOUT_SECONDS`); slow clients on a slow network need far less."""


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """`chatserver backend`."""

    host: str = "0.0.0.0"
    """Listen address (`HOST`)."""
    port: int = contract.DEFAULT_BACKEND_PORT
    """Listen port (`PORT`)."""
    pod: str = field(default_factory=socket.gethostname)
    """This backend's name in presence and in `message.pod` (`POD_NAME`, default hostname)."""
    cluster: str = contract.DEFAULT_CLUSTER
    """Namespace of the broker's exchanges and queues (`CHAT_CLUSTER`)."""
    rabbitmq_urls: tuple[str, ...] = ()
    """AMQP URLs (`RABBITMQ_URL`, comma-separated: the nodes of one RabbitMQ cluster, tried in
    turn); none means the in-memory broker, one process only."""
    room_max_bytes: int = contract.DEFAULT_ROOM_MAX_BYTES
    """Bytes a new room's stream may keep (`CHAT_ROOM_MAX_BYTES`, its `x-max-length-bytes`). A
    broker policy can lower it for every room, new and old, but never raise it: RabbitMQ keeps
    the lesser of the two."""
    memory_max_rooms: int = contract.DEFAULT_MEMORY_MAX_ROOMS
    """The in-memory broker only: room logs kept before the least recently used unfollowed one
    is forgotten (`CHAT_MEMORY_MAX_ROOMS`); 1000 is far more than people trying the chat use."""
    chat: ChatSettings = field(default_factory=ChatSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)


@dataclass(frozen=True, slots=True)
class FrontendSettings:
    """`chatserver frontend`."""

    host: str = "0.0.0.0"
    """Listen address (`HOST`)."""
    port: int = contract.DEFAULT_FRONTEND_PORT
    """Listen port (`PORT`)."""
    backend_urls: tuple[str, ...] = (f"http://localhost:{contract.DEFAULT_BACKEND_PORT}",)
    """Backends for /ws (`BACKEND_URL`, comma-separated): each new connection goes to the first
    one that accepts it, in this order."""
    allowed_origins: frozenset[str] = frozenset()
    """As `ChatSettings.allowed_origins` (`CHAT_ALLOWED_ORIGINS`)."""
    drain_seconds: float = contract.DEFAULT_DRAIN_SECONDS
    """SIGTERM to exit, at most (`CHAT_DRAIN_SECONDS`)."""
    outbox_bytes: int = contract.DEFAULT_OUTBOX_BYTES
    """Bytes waiting for one browser before the relay cuts it as a slow consumer (4008), as
    `ChatSettings.outbox_bytes` (`CHAT_OUTBOX_BYTES`)."""
    listen: ListenSettings = field(default_factory=ListenSettings)


def _read(
    env: Mapping[str, str],
    name: str,
    parse: Callable[[str], T],
    default: T,
    *,
    secret: bool = False,
) -> T:
    """`secret`: the value may hold credentials, so an error names the variable only."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name if secret else f'{name}={raw!r}'}: {exc}") from exc


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(f"must be a whole number >= {minimum}")
        return value

    return parse


_positive_int = _whole(1)
_room_cap = _whole(contract.MIN_MAX_ROOMS)


def _members_list_max(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= contract.MAX_MEMBERS_LIST_MAX:
        raise ValueError(f"must be a whole number from 1 to {contract.MAX_MEMBERS_LIST_MAX}")
    return value


def _typing_interval(raw: str) -> float:
    value = float(raw)
    if not 0 < value < contract.TYPING_SHOWN_SECONDS:
        # At or above it, clients would drop "is typing" between two signals.
        raise ValueError(f"must be a number > 0 and < {contract.TYPING_SHOWN_SECONDS}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be a number >= 0")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number > 0")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port, 1-65535")
    return value


def _items(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _rooms(raw: str) -> tuple[str, ...]:
    rooms = _items(raw)
    bad = [room for room in rooms if not re.fullmatch(contract.ROOM_NAME_PATTERN, room)]
    if bad:
        raise ValueError(f"invalid room names {bad}: must match {contract.ROOM_NAME_PATTERN}")
    return rooms


def _room_creation(raw: str) -> RoomCreation:
    for mode in contract.ROOM_CREATION_MODES:
        if raw == mode:
            return mode
    raise ValueError(f"must be one of {', '.join(contract.ROOM_CREATION_MODES)}")


def _origins(raw: str) -> frozenset[str]:
    origins = _items(raw)
    bad = [o for o in origins if not re.fullmatch(contract.ORIGIN_PATTERN, o)]
    if bad:
        raise ValueError(f"{bad}: an origin is scheme://host[:port], with no path")
    return frozenset(o.lower() for o in origins)


def _urls(raw: str) -> tuple[str, ...]:
    urls = _items(raw)
    bad = [u for u in urls if not re.fullmatch(r"https?://[^/\s]+/?", u)]
    if bad or not urls:
        raise ValueError(f"{bad or raw}: each backend URL is http(s)://host[:port]")
    return tuple(u.rstrip("/") for u in urls)


def _history_page(raw: str) -> int:
    value = _positive_int(raw)
    if value > contract.MAX_HISTORY_PAGE:
        raise ValueError(f"must be at most {contract.MAX_HISTORY_PAGE}")
    return value


def chat_settings_from_env(env: Mapping[str, str]) -> ChatSettings:
    base = ChatSettings()
    history_size = _read(
        env, Env.CHAT_HISTORY_SIZE, _whole(contract.MIN_HISTORY_SIZE), base.history_size
    )
    settings = ChatSettings(
        rooms=_read(env, Env.CHAT_ROOMS, _rooms, base.rooms),
        history_size=history_size,
        history_max_bytes=_read(
            env,
            Env.CHAT_HISTORY_MAX_BYTES,
            _whole(contract.MIN_HISTORY_MAX_BYTES),
            base.history_max_bytes,
        ),
        history_page_max=_read(
            env,
            Env.CHAT_HISTORY_PAGE_MAX,
            _history_page,
            min(history_size, contract.MAX_HISTORY_PAGE),
        ),
        max_message_bytes=_read(
            env,
            Env.CHAT_MAX_MESSAGE_BYTES,
            _whole(contract.MIN_MAX_MESSAGE_BYTES),
            base.max_message_bytes,
        ),
        rate_per_second=_read(env, Env.CHAT_RATE_PER_SECOND, _positive_float, base.rate_per_second),
        rate_burst=_read(
            env, Env.CHAT_RATE_BURST, _whole(contract.MIN_RATE_BURST), base.rate_burst
        ),
        drain_seconds=_read(env, Env.CHAT_DRAIN_SECONDS, _positive_float, base.drain_seconds),
        allowed_origins=_read(env, Env.CHAT_ALLOWED_ORIGINS, _origins, base.allowed_origins),
        max_frame_bytes=_read(env, Env.CHAT_MAX_FRAME_BYTES, _positive_int, base.max_frame_bytes),
        outbox_bytes=_read(env, Env.CHAT_OUTBOX_BYTES, _positive_int, base.outbox_bytes),
        max_rooms_per_connection=_read(
            env, Env.CHAT_MAX_ROOMS_PER_CONNECTION, _room_cap, base.max_rooms_per_connection
        ),
        max_rooms_per_client=_read(
            env, Env.CHAT_MAX_ROOMS_PER_CLIENT, _room_cap, base.max_rooms_per_client
        ),
        room_creation=_read(env, Env.CHAT_ROOM_CREATION, _room_creation, base.room_creation),
        members_list_max=_read(
            env, Env.CHAT_MEMBERS_LIST_MAX, _members_list_max, base.members_list_max
        ),
        typing_interval_seconds=_read(
            env, Env.CHAT_TYPING_INTERVAL_SECONDS, _typing_interval, base.typing_interval_seconds
        ),
    )
    if len(settings.rooms) > settings.max_rooms_per_connection:
        raise SettingsError(
            f"{Env.CHAT_MAX_ROOMS_PER_CONNECTION}={settings.max_rooms_per_connection}: below the "
            f"{len(settings.rooms)} rooms of {Env.CHAT_ROOMS}, which a client must be able to join"
        )
    fits = contract.max_message_bytes_for(settings.max_frame_bytes)
    if settings.max_message_bytes > fits:
        raise SettingsError(
            f"{Env.CHAT_MAX_MESSAGE_BYTES}={settings.max_message_bytes}: a send of that size does "
            f"not fit {Env.CHAT_MAX_FRAME_BYTES}={settings.max_frame_bytes} (at most {fits})"
        )
    return settings


def backend_settings_from_env(
    env: Mapping[str, str], *, default_port: int = 3000
) -> BackendSettings:
    base = BackendSettings()
    return BackendSettings(
        host=env.get(Env.HOST, "").strip() or base.host,
        port=_read(env, Env.PORT, _port, default_port),
        pod=env.get(Env.POD_NAME, "").strip() or base.pod,
        cluster=_read(env, Env.CHAT_CLUSTER, _cluster, base.cluster),
        rabbitmq_urls=_read(
            {Env.RABBITMQ_URL: secret_value(env, Env.RABBITMQ_URL)[0] or ""},
            Env.RABBITMQ_URL,
            _amqp_urls,
            (),
            secret=True,
        ),
        room_max_bytes=_read(
            env, Env.CHAT_ROOM_MAX_BYTES, _whole(contract.ROOM_SEGMENT_BYTES), base.room_max_bytes
        ),
        memory_max_rooms=_read(
            env, Env.CHAT_MEMORY_MAX_ROOMS, _positive_int, base.memory_max_rooms
        ),
        chat=chat_settings_from_env(env),
        auth=auth_settings_from_env(env),
        listen=listen_settings_from_env(env),
    )


def listen_settings_from_env(env: Mapping[str, str]) -> ListenSettings:
    base = ListenSettings()
    return ListenSettings(
        max_connections=_read(
            env,
            Env.CHAT_MAX_CONNECTIONS,
            _whole(contract.MIN_MAX_CONNECTIONS),
            base.max_connections,
        ),
        max_connections_per_ip=_read(
            env, Env.CHAT_MAX_CONNECTIONS_PER_IP, _whole(0), base.max_connections_per_ip
        ),
        handshake_timeout_seconds=_read(
            env,
            Env.CHAT_HANDSHAKE_TIMEOUT_SECONDS,
            _positive_float,
            base.handshake_timeout_seconds,
        ),
    )


def auth_settings_from_env(env: Mapping[str, str]) -> AuthSettings:
    """Refuses anything but a complete configuration: a typo in `CHAT_AUTH` or a missing key
    must stop the server, never leave it silently open."""
    mode = env.get(Env.CHAT_AUTH, "").strip() or "none"
    # The secret is used byte for byte, as the token issuer uses it.
    secret, secret_file = secret_value(env, Env.CHAT_AUTH_SECRET)
    public_key, public_key_file = secret_value(env, Env.CHAT_AUTH_PUBLIC_KEY)
    public_key = (public_key or "").strip() or None
    leeway = _read(
        env, Env.CHAT_AUTH_LEEWAY_SECONDS, _non_negative_float, AuthSettings().leeway_seconds
    )
    if mode == "none":
        return AuthSettings(leeway_seconds=leeway)
    if mode != "jwt":
        raise SettingsError(f"CHAT_AUTH={mode!r}: must be 'none' or 'jwt'")
    if (secret is None) == (public_key is None):
        raise SettingsError(
            "CHAT_AUTH=jwt needs exactly one of CHAT_AUTH_SECRET (HMAC) and "
            "CHAT_AUTH_PUBLIC_KEY (PEM)"
        )
    check_secret_length(secret)
    return AuthSettings(
        mode="jwt",
        secret=secret,
        public_key=public_key,
        key_file=secret_file or public_key_file,
        leeway_seconds=leeway,
    )


def check_secret_length(secret: str | None) -> None:
    if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"CHAT_AUTH_SECRET: must be at least {MIN_SECRET_BYTES} bytes")


def secret_value(env: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """A secret from the variable ``name`` or from the file ``<name>_FILE`` names (a mounted
    Secret: it stays out of the environment, which every process of the pod and its crash
    dumps can read): ``(value, file)``; ``(None, None)`` when neither is set."""
    path = env.get(f"{name}_FILE", "").strip()
    if not path:
        return env.get(name) or None, None
    if env.get(name):
        raise SettingsError(f"{name} and {name}_FILE: set one of them")
    return read_secret_file(path, f"{name}_FILE"), path


def read_secret_file(path: str, variable: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.__class__.__name__
        raise SettingsError(f"{variable}={path!r}: cannot read it ({reason})") from None


def _amqp_urls(raw: str) -> tuple[str, ...]:
    """Its errors never repeat a URL: they carry the broker's password."""
    urls = _items(raw)
    if not urls:
        raise ValueError("no URL")
    for position, url in enumerate(urls, 1):
        if not _is_amqp_url(url):
            raise ValueError(
                f"URL {position} of {len(urls)} is not amqp(s)://[user:pass@]host[:port]"
            )
    return urls


def _is_amqp_url(url: str) -> bool:
    try:
        parsed = urllib.parse.urlsplit(url)
        port_ok = parsed.port is None or parsed.port > 0  # a port that is no number raises
    except ValueError:
        return False
    return parsed.scheme in ("amqp", "amqps") and bool(parsed.hostname) and port_ok


def _cluster(raw: str) -> str:
    if not re.fullmatch(contract.CLUSTER_PATTERN, raw):
        raise ValueError(f"letters, digits, '_', '.', '-' (at most {contract.MAX_CLUSTER_CHARS})")
    return raw


def frontend_settings_from_env(env: Mapping[str, str]) -> FrontendSettings:
    base = FrontendSettings()
    return FrontendSettings(
        host=env.get(Env.HOST, "").strip() or base.host,
        port=_read(env, Env.PORT, _port, base.port),
        backend_urls=_read(env, Env.BACKEND_URL, _urls, base.backend_urls),
        allowed_origins=_read(env, Env.CHAT_ALLOWED_ORIGINS, _origins, base.allowed_origins),
        drain_seconds=_read(env, Env.CHAT_DRAIN_SECONDS, _positive_float, base.drain_seconds),
        outbox_bytes=_read(env, Env.CHAT_OUTBOX_BYTES, _positive_int, base.outbox_bytes),
        listen=listen_settings_from_env(env),
    )
