"""What may this frame do: every check a client frame passes before it has any effect, in the
order they run, for one connection. Pure: no I/O, time only through an injected clock (the
token bucket's and the abuse window's).

1. Shape: a text frame that parses as a frame of protocol v1 (`protocol.parse_client_frame`):
   `bad_request`, `too_large` or `invalid_room` otherwise. Binary frames are `bad_request`.
2. Rate: every frame but `ping` and `typing` spends one token of the connection's bucket
   (`rate_limited`), so a client pays for what touches the broker and keepalives stay free.
   `typing` has a limit of its own instead (`typing_due`): one relayed per room per
   `typing_interval_seconds`, the rest dropped without an answer, as a person typing on sends
   them steadily and a refusal would only cost them the tokens their messages need.
3. Access: a `join` must be within the session's `rooms` claim and a `send`, an update (`edit`,
   `delete`, `react`) or a `typing` within its `post` claim (`forbidden`); a `refresh` needs a
   server that uses tokens (`bad_request`). Who may edit which message is the hub's question:
   it needs the room's log. A `dm` (issue 13) needs token mode and someone else's `sub`
   (`forbidden`, `bad_request`) and becomes the `join` of the pair's room (`dm.py`), checked as
   any `join`; a `join` that names a direct-message room itself is `forbidden`, so only the
   pair ever enters one.
4. State: a `send`, an update, a `typing` or an `older` goes only to a room this connection has
   joined (`not_joined`).

A refused frame has no effect and is answered with an `error` (with the `ref` of a `send` or an
update, or the
`join`'s `room`). Refusals for what the client got wrong count towards abuse, whether the gate
or the handler behind it refused (a refused token refresh): `abuse_threshold` of them within
`abuse_window_seconds` close the connection with 1008 (`refused` says when). Frames accepted
in between excuse nothing (a ping between bad frames would otherwise reset any count), and
`rate_limited` and `unavailable` are never abuse: they say "later", which a well-behaved client
resuming many rooms at once, or retrying through a broker outage, hears often.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Final, Protocol

from chatserver import closecodes, protocol
from chatserver.access import Access, Identity
from chatserver.dm import dm_room, is_dm_room
from chatserver.protocol import ProtocolError
from chatserver.ratelimit import TokenBucket
from chatserver.settings import ChatSettings

NOT_ABUSE: Final = frozenset({closecodes.RATE_LIMITED, closecodes.UNAVAILABLE})
"""Refusals that ask the client to retry later rather than say it did something wrong."""


Admitted = (
    protocol.Join
    | protocol.Leave
    | protocol.Send
    | protocol.Update
    | protocol.Older
    | protocol.Ping
    | protocol.Refresh
    | protocol.Typing
    | protocol.RoomsQuery
)
"""What `admit` lets through: a `dm` has become the `join` of its room."""


class Session(Protocol):
    """What the gate reads of a session (`connection.Connection` in the server)."""

    @property
    def access(self) -> Access: ...

    @property
    def identity(self) -> Identity: ...

    @property
    def rooms(self) -> Collection[str]: ...


class FrameGate:
    """The checks of one connection's frames, with its rate limit and its abuse count."""

    # One per connection: slots, and no refusal window until a first refusal, keep an idle
    # connection's share small (issue 12: memory per idle connection).
    __slots__ = (
        "_abuse_threshold",
        "_abuse_window",
        "_bucket",
        "_clock",
        "_max_rooms",
        "_max_text_bytes",
        "_refusals",
        "_tokens",
        "_typing_interval",
        "_typing_relayed",
    )

    def __init__(
        self,
        settings: ChatSettings,
        *,
        tokens: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_text_bytes = settings.max_message_bytes
        self._bucket = TokenBucket(
            rate=settings.rate_per_second, burst=settings.rate_burst, clock=clock
        )
        self._abuse_window = settings.abuse_window_seconds
        self._clock = clock
        self._tokens = tokens
        self._abuse_threshold = settings.abuse_threshold
        self._refusals: deque[float] | None = None
        """When the last `abuse_threshold` refusals happened (bounded, whatever the client);
        made at the first."""
        self._typing_interval = settings.typing_interval_seconds
        self._typing_relayed: dict[str, float] = {}
        """When a `typing` was last relayed per room: only rooms joined when it was, and those
        not refreshed within an interval are dropped, so it stays within the room cap."""
        self._max_rooms = settings.max_rooms_per_connection

    def admit(self, data: str | bytes | None, session: Session) -> Admitted:
        """The frame in `data` (None for a binary frame) if `session` may send it now; raises
        ProtocolError with the contract's code otherwise."""
        if data is None:
            raise ProtocolError(closecodes.BAD_REQUEST, "binary frames are not supported")
        parsed = protocol.parse_client_frame(data, max_text_bytes=self._max_text_bytes)
        if not isinstance(parsed, protocol.DirectJoin):
            return self._admit(parsed, session)
        if not self._bucket.try_take():
            raise ProtocolError(closecodes.RATE_LIMITED, "slow down")
        return self._admit_join(self._direct_join(parsed, session), session)

    def _admit(self, frame: Admitted, session: Session) -> Admitted:
        if isinstance(frame, protocol.Ping):
            return frame
        if isinstance(frame, protocol.Typing):
            return self._admit_typing(frame, session)
        ref = frame.ref if isinstance(frame, protocol.Send | protocol.Update) else None
        joining = frame.room if isinstance(frame, protocol.Join) else None
        if not self._bucket.try_take():
            raise ProtocolError(closecodes.RATE_LIMITED, "slow down", ref=ref, room=joining)
        if isinstance(frame, protocol.Join):
            if is_dm_room(frame.room):
                raise ProtocolError(
                    closecodes.FORBIDDEN,
                    f"{frame.room} is a direct-message room: only its two people enter it,"
                    " with `dm`",
                    room=frame.room,
                )
            return self._admit_join(frame, session)
        if isinstance(frame, protocol.Send | protocol.Update):
            if not session.access.may_post(frame.room):
                raise ProtocolError(
                    closecodes.FORBIDDEN, f"not allowed to post to {frame.room}", ref=ref
                )
            if frame.room not in session.rooms:
                raise ProtocolError(
                    closecodes.NOT_JOINED, f"join {frame.room} before sending", ref=ref
                )
        if isinstance(frame, protocol.Older) and frame.room not in session.rooms:
            raise ProtocolError(closecodes.NOT_JOINED, f"join {frame.room} before reading it back")
        if isinstance(frame, protocol.Refresh) and not self._tokens:
            raise ProtocolError(closecodes.BAD_REQUEST, "this server does not use tokens")
        return frame

    def _admit_join(self, frame: protocol.Join, session: Session) -> protocol.Join:
        if not session.access.may_join(frame.room):
            raise ProtocolError(
                closecodes.FORBIDDEN, f"not allowed to join {frame.room}", room=frame.room
            )
        return frame

    def _direct_join(self, frame: protocol.DirectJoin, session: Session) -> protocol.Join:
        sub = session.identity.sub
        if sub is None or not self._tokens:
            raise ProtocolError(
                closecodes.FORBIDDEN,
                "direct messages need token mode: nobody's identity is verified here",
            )
        if frame.other == sub:
            raise ProtocolError(closecodes.BAD_REQUEST, "with: a direct message needs someone else")
        room = dm_room(sub, frame.other)
        return protocol.Join(
            room=room, since=frame.since, updates=frame.updates, dm_with=frame.other
        )

    def _admit_typing(self, frame: protocol.Typing, session: Session) -> protocol.Typing:
        if not session.access.may_post(frame.room):
            raise ProtocolError(closecodes.FORBIDDEN, f"not allowed to post to {frame.room}")
        if frame.room not in session.rooms:
            raise ProtocolError(closecodes.NOT_JOINED, f"join {frame.room} before typing there")
        return frame

    def typing_due(self, room: str) -> bool:
        """True when a `typing` for `room` (admitted) is to be relayed now: none was within the
        interval. Counts it as relayed."""
        now = self._clock()
        last = self._typing_relayed.get(room)
        if last is not None and now - last < self._typing_interval:
            return False
        if len(self._typing_relayed) >= self._max_rooms:
            self._typing_relayed = {
                name: at
                for name, at in self._typing_relayed.items()
                if now - at < self._typing_interval
            }
        self._typing_relayed[room] = now
        return True

    def refused(self, code: str) -> bool:
        """Count one refusal with error `code`; True when that makes too many within the window
        (close with 1008)."""
        if code in NOT_ABUSE:
            return False
        now = self._clock()
        if self._refusals is None:
            self._refusals = deque(maxlen=self._abuse_threshold)
        refusals = self._refusals
        refusals.append(now)
        return len(refusals) == self._abuse_threshold and now - refusals[0] <= self._abuse_window
