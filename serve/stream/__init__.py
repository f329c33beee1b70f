"""Live scoring: the ``/v1/stream`` WebSocket, its sessions, and the replay/capture clients."""
