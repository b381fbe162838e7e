"""Helpers for tests that talk to a chat server over real sockets."""
