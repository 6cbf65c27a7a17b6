"""Rate-limit primitives the vendor emulators compose into each vendor's policy.

All take an explicit ``now`` (seconds) so that tests can drive them without sleeping.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # when capacity next frees up (epoch seconds)
    retry_after: float  # seconds to wait before a retry can succeed (0 when allowed)


class RollingWindow:
    """At most ``limit`` calls in any ``interval`` seconds, per key (HubSpot's 10 s window)."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> Decision:
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            horizon = now - self.interval
            while calls and calls[0] <= horizon:
                calls.popleft()
            if len(calls) >= self.limit:
                free_at = calls[0] + self.interval
                return Decision(False, self.limit, 0, free_at, max(free_at - now, 0.001))
            calls.append(now)
            reset = calls[0] + self.interval
            return Decision(True, self.limit, self.limit - len(calls), reset, 0.0)


class FixedWindow:
    """At most ``limit`` calls per window aligned on multiples of ``interval`` (Intercom's 10 s
    windows, Salesforce's and HubSpot's daily allocations)."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float, cost: int = 1) -> Decision:
        with self._lock:
            start = math.floor(now / self.interval) * self.interval
            window_start, used = self._windows.get(key, (start, 0))
            if window_start != start:
                used = 0
            reset = start + self.interval
            if used + cost > self.limit:
                self._windows[key] = (start, used)
                return Decision(False, self.limit, 0, reset, max(reset - now, 0.001))
            used += cost
            self._windows[key] = (start, used)
            return Decision(True, self.limit, self.limit - used, reset, 0.0)

    def used(self, key: str, now: float) -> int:
        with self._lock:
            start = math.floor(now / self.interval) * self.interval
            window_start, used = self._windows.get(key, (start, 0))
            return used if window_start == start else 0
