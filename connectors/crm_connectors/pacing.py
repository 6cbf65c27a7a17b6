"""Proactive rate limiting from each vendor's rate-limit headers, so a sync is not throttled.

A :class:`Pacer` sits in :class:`~crm_connectors.http.ApiClient`: ``before(route)`` runs before
each attempt and may sleep (or raise :class:`~crm_connectors.errors.QuotaExhausted`);
``after(response)`` runs on every response, and with ``None`` when the attempt got none.

- :class:`HubSpotPacer`: a client-side copy of HubSpot's rolling window, sized from
  ``X-HubSpot-RateLimit-Max`` / ``-Interval-Milliseconds`` and corrected by ``-Remaining``; a
  separate rolling budget for search (5 requests/s per token, and search responses carry no
  rate-limit headers [CRM-API.md §1.4, §1.8]); a guard on ``-Daily-Remaining``. A server that
  sends none of these headers on non-search calls publishes no window and is not held to one.
- :class:`IntercomPacer`: fixed windows from ``X-RateLimit-Limit/-Remaining/-Reset`` (reset in
  unix seconds [CRM-API.md §3.7]).
- :class:`SalesforcePacer`: a quota guard on ``Sforce-Limit-Info: api-usage=N/M``
  [CRM-API.md §2.8] that stops before the org's daily allocation is eaten.

Clocks and sleep are injectable, so tests can drive the arithmetic without waiting.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httpx

from .errors import QuotaExhausted

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


class _Rolling:
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


class _Gate:
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


def _int(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class HubSpotPacer:
    """HubSpot: the rolling 10-second window, the search budget and the daily guard.

    Until the first rate-limit headers arrive, the window is the lowest private-app tier
    (100 per 10 s [CRM-API.md §1.8]). HubSpot sends ``X-HubSpot-RateLimit-*`` on every
    non-search response, so a server whose first ``headerless_after`` successful non-search
    responses carry none publishes no burst limit (a sandbox with limits off, a mock): the
    pacer then stops holding calls back for a window it would only be guessing, rather than
    slowing every run to the lowest tier. It keeps counting its calls, so when the server does
    show a limit after all (a response with the headers, or a 429, which the client retries)
    the window is paced again, from then on. Once a limit has been shown, a response without
    headers changes nothing. Search and the daily guard are paced either way.
    """

    def __init__(
        self,
        *,
        default_max: int = 100,
        default_interval: float = 10.0,
        search_per_second: int = 5,
        daily_reserve: int = 0,
        headerless_after: int = 3,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        margin: float = 0.005,
    ) -> None:
        # Search: 5 requests/s per token, no headers [CRM-API.md §1.4].
        self._burst = _Rolling(default_max, default_interval)
        self._search = _Rolling(search_per_second, 1.0)
        self._daily_reserve = daily_reserve
        self._daily_remaining: int | None = None
        self._headerless_after = headerless_after
        self._headerless = 0  # successful non-search responses without headers, before any had
        self._limit_shown = False  # rate-limit headers or a 429 seen on a non-search call
        self._gate = _Gate(clock, sleep, margin)
        self._local = threading.local()

    @property
    def pacing_burst(self) -> bool:
        """False once the server has shown it publishes no burst limit (see the class doc)."""
        return self._limit_shown or self._headerless < self._headerless_after

    def before(self, route: str) -> None:
        search = route.split("?")[0].rstrip("/").endswith("/search")
        budget = self._search if search else self._burst

        def check(now: float) -> float:
            daily = self._daily_remaining
            if not search and daily is not None and daily <= self._daily_reserve:
                raise QuotaExhausted(
                    "daily request limit reached (X-HubSpot-RateLimit-Daily-Remaining)",
                    vendor="hubspot",
                    route=route,
                )
            if search or self.pacing_burst:
                wait = budget.wait(now)
            else:
                budget.prune(now)
                wait = 0.0
            if wait <= 0:
                budget.in_flight += 1
            return wait

        self._gate.admit(check, route, "hubspot")
        self._local.budget = budget

    def after(self, response: httpx.Response | None) -> None:
        budget: _Rolling = getattr(self._local, "budget", self._burst)
        self._local.budget = self._burst
        with self._gate.lock:
            now = self._gate.clock()
            budget.landed(now)
            if response is None or budget is self._search:
                return
            limit = _int(response.headers, "X-HubSpot-RateLimit-Max")
            interval_ms = _int(response.headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
            remaining = _int(response.headers, "X-HubSpot-RateLimit-Remaining")
            if limit is not None or remaining is not None or response.status_code == 429:
                self._limit_shown = True
            elif response.is_success and not self._limit_shown:
                self._headerless += 1
                if self._headerless == self._headerless_after:
                    log.info(
                        "hubspot sends no X-HubSpot-RateLimit headers: not pacing the burst "
                        "window (search is still paced, a 429 is still retried)"
                    )
            if limit:
                budget.limit = limit
            if interval_ms:
                budget.interval = interval_ms / 1000
            if remaining is not None:
                budget.reconcile(budget.limit - remaining, now)
            daily = _int(response.headers, "X-HubSpot-RateLimit-Daily-Remaining")
            if daily is not None:
                self._daily_remaining = daily


class IntercomPacer:
    """Intercom: fixed windows (10 s by default) from ``X-RateLimit-*`` [CRM-API.md §3.7]."""

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
        self._gate = _Gate(clock, sleep, margin)

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
            limit = _int(response.headers, "X-RateLimit-Limit")
            remaining = _int(response.headers, "X-RateLimit-Remaining")
            reset = _int(response.headers, "X-RateLimit-Reset")
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


_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforcePacer:
    """Salesforce: a guard on the org's rolling 24-hour API allocation [CRM-API.md §2.8].

    ``min_remaining`` keeps that many calls for everyone else in the org; ``max_share`` caps
    the share of the allocation (``M``) this run may use. Either trips ``QuotaExhausted``
    *before* the call, so the org never reaches its 403 ``REQUEST_LIMIT_EXCEEDED``.
    """

    def __init__(
        self,
        *,
        min_remaining: int = 0,
        max_share: float | None = None,
    ) -> None:
        if max_share is not None and not 0 < max_share <= 1:
            raise ValueError("max_share must be within (0, 1]")
        self._min_remaining = min_remaining
        self._max_share = max_share
        self._used: int | None = None
        self._max: int | None = None
        self._by_run = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def usage(self) -> tuple[int | None, int | None]:
        """``(used, allocation)`` as last reported by ``Sforce-Limit-Info``."""
        return self._used, self._max

    def before(self, route: str) -> None:
        with self._lock:
            if self._used is not None and self._max is not None:
                left = self._max - self._used - self._in_flight
                if left <= self._min_remaining:
                    raise QuotaExhausted(
                        f"daily API allocation guard: {self._used} of {self._max} used, "
                        f"keeping {self._min_remaining} in reserve",
                        vendor="salesforce",
                        route=route,
                    )
                if self._max_share is not None:
                    cap = math.floor(self._max * self._max_share)
                    if self._by_run + self._in_flight >= cap:
                        raise QuotaExhausted(
                            f"this run used its share of the daily API allocation "
                            f"({self._by_run} of {cap})",
                            vendor="salesforce",
                            route=route,
                        )
            self._in_flight += 1

    def after(self, response: httpx.Response | None) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._by_run += 1
            if response is None:
                return
            match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
            if match:
                self._used, self._max = int(match.group(1)), int(match.group(2))
