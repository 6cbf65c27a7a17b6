"""Zendesk's pacing: the account's per-minute window and the incremental exports' own budget.

- **Account window.** Every response carries ``X-Rate-Limit`` and ``X-Rate-Limit-Remaining``
  (requests per minute for the account: 200 to 2,500 by plan) and, on most endpoints,
  ``ratelimit-reset`` (seconds to the window's end) [API.md §2.1, §2.2]. When the remaining
  budget (less calls still in flight) reaches ``reserve``, calls wait for the reset; without a
  reset header they wait a minute from the first call the server counted.
- **Incremental exports.** ``/incremental/`` calls have their own limit, 10 per minute (30 with
  the High Volume add-on; the users cursor export 20, or 60), and send no header for it
  [API.md §2.3]: the pacer keeps a rolling 60-second budget of ``exports_per_minute`` itself.

A 429 is still possible (another integration shares the account); the client retries it after
its ``Retry-After``.
"""

from __future__ import annotations

import threading
import time

import httpx

from ..pacing import Clock, Gate, Rolling, Sleep, header_int

WINDOW = 60.0


class ZendeskPacer:
    def __init__(
        self,
        *,
        exports_per_minute: int = 10,
        reserve: int = 0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        margin: float = 0.05,
    ) -> None:
        self._exports = Rolling(exports_per_minute, WINDOW)
        self._reserve = reserve
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._in_flight = 0
        self._gate = Gate(clock, sleep, margin)
        self._local = threading.local()

    def before(self, route: str) -> None:
        export = "/incremental/" in route

        def check(now: float) -> float:
            if self._reset_at is not None and now >= self._reset_at:
                self._remaining, self._reset_at = None, None  # a new window
            left = None if self._remaining is None else self._remaining - self._in_flight
            if left is not None and left <= self._reserve:
                return max((self._reset_at or now + WINDOW) - now, 0.001)
            if export:
                wait = self._exports.wait(now)
                if wait > 0:
                    return wait
                self._exports.in_flight += 1
            self._in_flight += 1
            return 0.0

        self._gate.admit(check, route, "zendesk")
        self._local.export = export

    def after(self, response: httpx.Response | None) -> None:
        export = getattr(self._local, "export", False)
        self._local.export = False
        with self._gate.lock:
            now = self._gate.clock()
            self._in_flight = max(0, self._in_flight - 1)
            if export:
                self._exports.landed(now)
            if response is None:
                return
            remaining = header_int(response.headers, "X-Rate-Limit-Remaining")
            if remaining is None:
                return
            reset = header_int(response.headers, "ratelimit-reset")
            if reset is not None:
                self._reset_at = now + reset
            elif self._reset_at is None:
                self._reset_at = now + WINDOW
            self._remaining = remaining
