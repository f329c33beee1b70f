"""Polling for what a background thread or server does: the one ``wait_until`` of the tests."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, poll: float = 0.02) -> bool:
    """Poll ``predicate`` every ``poll`` seconds; True once it holds, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
