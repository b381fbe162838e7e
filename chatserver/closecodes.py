"""How the server ends things: WebSocket close codes, the close handshake's time limit and the
protocol's error codes, every one the server uses, named once."""

from __future__ import annotations

from typing import Final

# Close codes (RFC 6455 section 7.4; 4000-4999 are private to this application, and 4001 is
# reserved by the contract for token mode, DESIGN section 7).
NORMAL: Final = 1000
POLICY_VIOLATION: Final = 1008
"""Sustained abuse: too many bad frames in a row."""
MESSAGE_TOO_BIG: Final = 1009
"""A frame over the hard frame limit (aiohttp closes with it while reading)."""
SERVICE_RESTART: Final = 1012
"""The backend is draining (SIGTERM): reconnect, possibly to another backend."""
SESSION_EXPIRED: Final = 4001
"""Token mode: the session's token expired without a `refresh` (after an `error` `token_expired`);
reconnecting needs a new token."""
SLOW_CONSUMER: Final = 4008
"""The client read too slowly and its outbox overflowed; it should reconnect and join with
`since` to recover what it missed (like Centrifugo's 3008)."""

CLOSE_TIMEOUT: Final = 2.0
"""Seconds to send a close frame and hear the answer; a peer that does not answer is dropped
(backend sessions and both legs of the frontend's relay)."""

# Error codes of `error` frames (DESIGN section 4); `forbidden` and `token_expired` belong to
# token mode (DESIGN section 7).
BAD_REQUEST: Final = "bad_request"
TOO_LARGE: Final = "too_large"
RATE_LIMITED: Final = "rate_limited"
INVALID_ROOM: Final = "invalid_room"
NOT_JOINED: Final = "not_joined"
UNAVAILABLE: Final = "unavailable"
ROOM_LIMIT: Final = "room_limit"
"""A room that does not exist yet cannot be created: the cluster holds as many as it may."""
FORBIDDEN: Final = "forbidden"
"""Token mode: a room outside the token's claims, or a refresh for another user; any mode: an
`edit` or `delete` of someone else's message (issue 13)."""
TOKEN_EXPIRED: Final = "token_expired"
TOO_MANY_ROOMS: Final = "too_many_rooms"
"""A `join` over `CHAT_MAX_ROOMS_PER_CONNECTION` or `CHAT_MAX_ROOMS_PER_CLIENT`: leave a room
first."""
MESSAGE_NOT_FOUND: Final = "message_not_found"
"""An `edit`, `delete` or `react` naming no message this backend can find in the room's log (an
unknown id, one beyond retention, or the id of an update rather than a message; issue 13)."""
ROOM_NOT_FOUND: Final = "room_not_found"
"""A `join` of a room that does not exist yet, by a session that may not create it
(`CHAT_ROOM_CREATION=preset`, or the token's `create` claim; DESIGN section 7)."""
