"""Proactive rate limiting, so a sync is not throttled: the seam and its shared parts.

A :class:`Pacer` sits in :class:`~crm_connectors.http.ApiClient`: ``before(route)`` runs before
each attempt and may sleep (or raise :class:`~crm_connectors.errors.QuotaExhausted`);
``after(response)`` runs on every response, and with ``None`` when the attempt got none. Each
vendor's folder has its own pacer in ``pacing.py``, built from the vendor's rate-limit headers
with the parts here: :class:`Rolling` (a rolling window), :class:`Gate` (wait, then admit) and
:func:`header_int`.

Clocks and sleep are injectable, so tests can drive the arithmetic without waiting.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httpx

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Pacer(Protocol):
    """The rate-limit seam of the HTTP client."""

    def before(self, route: str) -> None:
        """Called before each attempt; may sleep, or raise ``QuotaExhausted``."""

    def after(self, response: httpx.Response | None) -> None:
        """Called after each attempt, with ``None`` when no response came back."""


class NoPacing:
    """A pacer that never waits (for token endpoints and tests)."""

    def before(self, route: str) -> None:
        return None

    def after(self, response: httpx.Response | None) -> None:
        return None


class Rolling:
    """At most ``limit`` calls in any ``interval`` seconds, counting calls still in flight.

    A call is stamped when its response arrives, which is no earlier than the server admitted
    it, so a slot we think is free is free on the server too.
    """

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = max(1, limit)
        self.interval = interval
        self.stamps: deque[float] = deque()
        self.in_flight = 0

    def prune(self, now: float) -> None:
        horizon = now - self.interval
        while self.stamps and self.stamps[0] <= horizon:
            self.stamps.popleft()

    def wait(self, now: float) -> float:
        self.prune(now)
        excess = len(self.stamps) + self.in_flight - self.limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(self.stamps):
            return 0.01  # every slot is held by a call in flight: poll until one lands
        return self.stamps[excess - 1] + self.interval - now

    def landed(self, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.stamps.append(now)

    def reconcile(self, used_on_server: int, now: float) -> None:
        """Someone else shares the budget: count the calls the server saw that we did not.

        Our own calls that have left the window must not count against what the server
        reports, or the others' calls would be taken for ours."""
        self.prune(now)
        missing = used_on_server - len(self.stamps) - self.in_flight
        self.stamps.extend([now] * max(0, missing))


class Gate:
    """The wait-then-admit loop shared by the pacers: ``check`` under the lock returns the
    seconds to wait (0 admits the call and books it); sleeping happens outside the lock."""

    def __init__(self, clock: Clock, sleep: Sleep, margin: float) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.sleep = sleep
        self.margin = margin

    def admit(self, check: Callable[[float], float], route: str, vendor: str) -> None:
        while True:
            with self.lock:
                wait = check(self.clock())
            if wait <= 0:
                return
            log.debug("%s %s: pacing, waiting %.3f s", vendor, route, wait + self.margin)
            self.sleep(wait + self.margin)


def header_int(headers: httpx.Headers, name: str) -> int | None:
    """An integer header's value; None when absent or not an integer."""
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
