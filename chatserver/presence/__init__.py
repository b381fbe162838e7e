"""Cluster-wide presence: how many people are online, and in which rooms, across every backend.

What belongs here: the table of every pod's latest beat and the arithmetic over it (`table.py`,
pure), and the loop that publishes this pod's beats and says when the counts changed
(`loop.py`). What does not: the beat's wire format (`interchange.py`) and writing `presence`
frames to members (the hub's fan-out).
"""
