"""Intercom's pacing: fixed windows from ``X-RateLimit-*`` [API.md §3.7]."""

from __future__ import annotations

import math
import time

import httpx

from ..pacing import Clock, Gate, Sleep, header_int


class IntercomPacer:
    """Intercom: fixed windows (10 s by default) from ``X-RateLimit-*`` [API.md §3.7]."""

    def __init__(
        self,
        *,
        window: float = 10.0,
        reserve: int = 0,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        margin: float = 0.05,
    ) -> None:
        self._window = window
        self._reserve = reserve
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None  # unix seconds, from X-RateLimit-Reset
        self._in_flight = 0
        # X-RateLimit-Reset is wall-clock unix time, so the clock must be time.time.
        self._gate = Gate(clock, sleep, margin)

    def before(self, route: str) -> None:
        def check(now: float) -> float:
            if self._reset_at is not None and now >= self._reset_at and self._limit is not None:
                # A new window has started; its budget is the full limit.
                steps = math.floor((now - self._reset_at) / self._window) + 1
                self._reset_at += steps * self._window
                self._remaining = self._limit
            left = None if self._remaining is None else self._remaining - self._in_flight
            if left is not None and self._reset_at is not None and left <= self._reserve:
                return max(self._reset_at - now, 0.001)
            self._in_flight += 1
            return 0.0

        self._gate.admit(check, route, "intercom")

    def after(self, response: httpx.Response | None) -> None:
        with self._gate.lock:
            self._in_flight = max(0, self._in_flight - 1)
            if response is None:
                if self._remaining is not None:
                    self._remaining -= 1
                return
            limit = header_int(response.headers, "X-RateLimit-Limit")
            remaining = header_int(response.headers, "X-RateLimit-Remaining")
            reset = header_int(response.headers, "X-RateLimit-Reset")
            if limit is None or remaining is None or reset is None:
                if self._remaining is not None:
                    self._remaining -= 1  # counted or not, be conservative
                return
            if self._reset_at is not None and reset < self._reset_at:
                return  # a late answer from a window that is already over
            if self._reset_at is None or reset > self._reset_at:
                self._remaining = remaining
            else:
                self._remaining = min(remaining, self._remaining or remaining)
            self._limit, self._reset_at = limit, float(reset)
