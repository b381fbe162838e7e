"""How many rooms a client may hold open on this backend: the caps of DESIGN section 4, counted.

Every joined room costs the backend a stream consumer and the broker, for a name never used
before, a durable stream; without a cap one socket could name thousands of rooms. Two caps:
per connection (`CHAT_MAX_ROOMS_PER_CONNECTION`) and per client over all its connections on this
backend (`CHAT_MAX_ROOMS_PER_CLIENT`), so that opening more sockets does not multiply the first.
The client is the token's verified `sub` in token mode and the `client` id in open mode, where
anyone may pick any id: there the per-address connection cap (`listener.py`) is what bounds a
client that keeps changing ids.

Pure: the hub calls `check` before a join touches the broker and again where it adds the
member, and tells `add`/`remove` as members come and go.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from chatserver import closecodes
from chatserver.access import Identity
from chatserver.protocol import ProtocolError


def client_key(identity: Identity) -> str:
    """Whose rooms count together. One backend runs one mode, so sub and client ids never mix."""
    return identity.sub if identity.sub is not None else identity.client


class RoomTally:
    """The rooms each client has joined on this backend, with how many of its connections are
    in each."""

    def __init__(self, *, per_connection: int, per_client: int) -> None:
        self._per_connection = per_connection
        self._per_client = per_client
        self._rooms: dict[str, Counter[str]] = {}

    def check(self, client: str, joined: Collection[str], room: str) -> None:
        """Raise `too_many_rooms` if a connection of `client` that has `joined` these rooms may
        not join `room` too. Joining a room again is never refused."""
        if room in joined:
            return
        if len(joined) >= self._per_connection:
            raise ProtocolError(
                closecodes.TOO_MANY_ROOMS,
                f"this connection is in {len(joined)} rooms, the most allowed: leave one first",
                room=room,
            )
        rooms = self._rooms.get(client, Counter())
        if room not in rooms and len(rooms) >= self._per_client:
            raise ProtocolError(
                closecodes.TOO_MANY_ROOMS,
                f"your connections are in {len(rooms)} rooms, the most allowed: leave one first",
                room=room,
            )

    def add(self, client: str, room: str) -> None:
        self._rooms.setdefault(client, Counter())[room] += 1

    def remove(self, client: str, room: str) -> None:
        rooms = self._rooms.get(client)
        if rooms is None or room not in rooms:
            return
        rooms[room] -= 1
        if rooms[room] <= 0:
            del rooms[room]
        if not rooms:
            del self._rooms[client]

    def rooms_of(self, client: str) -> int:
        """Distinct rooms `client` is in (for tests and logs)."""
        return len(self._rooms.get(client, ()))
