"""The sandbox's clock: the machine's time plus an offset that tests and demos advance.

Everything in the sandbox that depends on time (token expiry, rate-limit windows, cursor and
scroll lifetimes, Bulk job progress, search index lag, the modification times of writes) asks
this clock, never ``time`` directly, so a test waits out a 10-minute token or a 1-minute scroll
by advancing the clock (``POST /_sandbox/clock {"advance": 600}``, or
:meth:`Clock.advance`) instead of sleeping. Time still flows between advances, as on a real
server.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds the clock has been advanced in all."""
        return self._offset

    def time(self) -> float:
        """Unix seconds, as the sandbox's servers see them."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """A monotonic reading that moves with :meth:`advance` too."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back); returns the new offset."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._offset

    def sleep(self, seconds: float) -> None:
        """A client's ``sleep`` that advances the clock instead of waiting (for tests whose
        client and sandbox share this clock)."""
        self.advance(max(0.0, seconds))
