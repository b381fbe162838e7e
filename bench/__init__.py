"""The benchmark harness: chatcluster against its peers, both as real processes behind one
private RabbitMQ node, driven by one asyncio load generator (`python -m bench`, `make bench`).

Belongs here: scenarios, the load generator and its wire protocols, process and /proc
measurement, reporting, and the peers' servers (`bench.peers`). Nothing here is imported by
`chatserver` or `chatoperator`.
"""
