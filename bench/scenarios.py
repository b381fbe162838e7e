"""Benchmark scenarios and where each client goes: pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class ScenarioError(ValueError):
    """Scenario parameters that cannot describe a run."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    subscribers: int
    """WebSocket clients, each a member of one room; spread evenly over rooms and servers."""
    senders: int
    """How many of the subscribers also publish (spread over rooms and servers)."""
    rooms: int
    """Rooms the subscribers are spread over."""
    rate: float
    """Messages per second, all senders together (open loop: sent on schedule, never waiting
    for the previous answer)."""
    duration: float
    """Seconds of sending; the run then waits (bounded) for the last deliveries."""
    servers: int = 2
    """Server processes of the system under test, behind one broker."""
    stalled: int = 0
    """Members that stop reading when the measure starts (the last clients, never senders):
    their deliveries are not owed, the others' latency shows what they cost."""

    def __post_init__(self) -> None:
        if min(self.subscribers, self.senders, self.rooms, self.servers) < 1:
            raise ScenarioError(f"{self.name}: counts must be >= 1")
        if self.senders + self.stalled > self.subscribers or self.stalled < 0:
            raise ScenarioError(f"{self.name}: more senders and stalled clients than subscribers")
        if self.subscribers < self.rooms * self.servers:
            raise ScenarioError(f"{self.name}: fewer subscribers than rooms x servers")
        if not (self.rate > 0 and self.duration > 0):
            raise ScenarioError(f"{self.name}: rate and duration must be > 0")

    @property
    def messages_per_sender(self) -> int:
        return max(1, round(self.rate * self.duration / self.senders))

    @property
    def send_interval(self) -> float:
        """Seconds between two messages of one sender."""
        return self.senders / self.rate


@dataclass(frozen=True, slots=True)
class ClientPlan:
    index: int
    server: int
    """Index of the server process it connects to."""
    room: str
    room_size: int
    """Members of its room, itself included: deliveries expected per message sent there."""
    room_senders: int
    """Senders in its room (itself included if it sends)."""
    sends: bool
    stalls: bool = False
    """Stops reading when the measure starts."""
    room_stalled: int = 0
    """Members of its room that stall (not owed deliveries)."""

    @property
    def room_owed(self) -> int:
        """Deliveries owed per message sent to its room: to every member still reading."""
        return self.room_size - self.room_stalled


def plan_clients(scenario: Scenario, *, victim: int | None = None) -> list[ClientPlan]:
    """Client i joins room i mod rooms on a server shifted by the room, so that every room and
    the senders (the first `senders` clients) are spread over all the servers.

    With a `victim` server (one the run will kill), the senders are the first clients on the
    other servers instead, so that messages keep flowing while the victim's clients come back.
    """
    if victim is not None and (scenario.servers < 2 or not 0 <= victim < scenario.servers):
        raise ScenarioError(f"{scenario.name}: killing a server needs 2 or more servers")
    servers = [
        (index // scenario.rooms + index % scenario.rooms) % scenario.servers
        for index in range(scenario.subscribers)
    ]
    candidates = [index for index, server in enumerate(servers) if server != victim]
    if len(candidates) < scenario.senders:
        raise ScenarioError(
            f"{scenario.name}: {scenario.senders} senders but {len(candidates)} clients "
            f"off the victim server"
        )
    sending = set(candidates[: scenario.senders])
    stalling = set(range(scenario.subscribers - scenario.stalled, scenario.subscribers))
    rooms = [f"bench-{i}" for i in range(scenario.rooms)]
    sizes = [0] * scenario.rooms
    senders = [0] * scenario.rooms
    stalled = [0] * scenario.rooms
    for index in range(scenario.subscribers):
        sizes[index % scenario.rooms] += 1
        senders[index % scenario.rooms] += index in sending
        stalled[index % scenario.rooms] += index in stalling
    return [
        ClientPlan(
            index=index,
            server=servers[index],
            room=rooms[index % scenario.rooms],
            room_size=sizes[index % scenario.rooms],
            room_senders=senders[index % scenario.rooms],
            sends=index in sending,
            stalls=index in stalling,
            room_stalled=stalled[index % scenario.rooms],
        )
        for index in range(scenario.subscribers)
    ]


DEFAULTS: Final = (
    Scenario(name="one-room", subscribers=200, senders=4, rooms=1, rate=40.0, duration=15.0),
    Scenario(name="many-rooms", subscribers=200, senders=20, rooms=20, rate=200.0, duration=15.0),
)
"""The default run: a broadcast-heavy room (every message to every client) and many small rooms
(as many messages as deliveries crossing the broker); each about 8k / 2k deliveries a second."""

LARGER: Final = (
    Scenario(name="one-room-1000", subscribers=1000, senders=4, rooms=1, rate=20.0, duration=15.0),
    Scenario(
        name="rooms-1000x5", subscribers=5000, senders=5000, rooms=1000, rate=500.0, duration=20.0
    ),
    Scenario(
        name="stalled", subscribers=100, senders=4, rooms=1, rate=100.0, duration=20.0, stalled=1
    ),
)
"""Selected with `--scenario`: one room of 1,000 (20k deliveries a second); 1,000 rooms of 5
where every member chats, one message per 10 s each (500 messages, 2,500 deliveries a second);
and a busy room of 100 (10k deliveries a second) where one member stops reading: its 2,000
messages (a few hundred KB) back up into the servers, and the others' p99 is the figure (compare
with `--stalled 0`)."""

IDLE: Final = Scenario(
    name="idle", subscribers=10_000, senders=1, rooms=100, rate=1.0, duration=30.0
)
"""10,000 connections in 100 rooms, nothing sent (`bench.loadgen.run_idle`): connections are
what is measured, and a room costs chatcluster a RabbitMQ stream, slow to declare by the
thousand on this machine. `duration` is how long they sit idle before memory is read, and
the servers' CPU is measured meanwhile: 30 s hold a heartbeat of every connection (chatserver's
and Centrifugo's pings are 25 s apart); `senders` and `rate` are unused."""

KILL: Final = Scenario(name="kill", subscribers=200, senders=4, rooms=1, rate=20.0, duration=15.0)
"""One backend SIGKILLed a third (`KILL_AT`) into the sending (`bench.killrun`); not in the
default run. 20 msg/s keeps the messages missed while reconnecting well inside chatserver's
history window (100 per room by default)."""
STORM: Final = Scenario(name="storm", subscribers=2000, senders=4, rooms=1, rate=2.0, duration=20.0)
"""The kill run at issue 12's size: 1,000 clients of the killed server come back at once
(`bench.killrun`); not in the default run. 2 msg/s (4,000 deliveries a second, as `kill`)
leaves the two cores to the storm, and keeps what a victim misses within the history (100 per
room in chatserver and in the bench's Centrifugo) even if it took the whole 35 s
`RECOVERY_TIMEOUT` to come back: 70 messages."""
RECOVERY_RUNS: Final = frozenset({KILL.name, STORM.name})
"""Scenarios that kill a server and measure its clients' recovery."""
KILL_AT: Final = 1 / 3
"""Share of the sending time before the kill: the survivors' latency is measured before it too,
and the messages after it keep flowing while the victims come back."""
VICTIM: Final = 0
"""Index of the server killed."""
