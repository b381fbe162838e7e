"""chatserver: the chat backend, the frontend (UI and /ws relay) and the embedded dev server.

Where things live, one concept per module:
- `protocol.py` the client protocol (sans I/O); `interchange.py` what backends exchange
  through the broker (message records, presence beats); `contract.py` what the operator and
  the UI share with the server (env names, defaults, shapes); `closecodes.py` every close and
  error code.
- `gate.py` what a client frame may do; `hub.py` local sessions, membership and fan-out;
  `roomlogs.py` following rooms and the send -> record -> ack story; `presence/` cluster-wide
  counts; `history.py` a room's window; `access.py` who a session is and what it may join.
- `connection.py` one client's socket (aiohttp); `listener.py` which connections a process
  takes (caps, handshake timeout); `backend.py`, `frontend.py`, `cli.py` the processes;
  `broker/` the broker seam and its two implementations; `static/` the browser UI.
"""
