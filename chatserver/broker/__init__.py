"""Brokers: how backend processes share room logs and presence.

What belongs here: the `Broker` protocol (`base.py`) and its implementations, `memory.py`
(one process, `chatserver dev` and unit tests) and `rabbitmq.py` (aiormq, any number of backends).
What does not: what the records and beats mean (`interchange.py`), which rooms to follow, dedupe
and history windows (`roomlogs.py`), sessions (`hub.py`) and presence arithmetic (`presence/`);
those live above this seam and are the same whichever broker carries the records.
"""

from chatserver.broker.base import (
    Broker,
    BrokerListener,
    BrokerUnavailable,
    OlderRecords,
    Record,
)

__all__ = ["Broker", "BrokerListener", "BrokerUnavailable", "OlderRecords", "Record"]
