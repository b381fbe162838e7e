"""chatserver: the chat backend, the frontend (UI and /ws proxy) and the embedded dev server."""
