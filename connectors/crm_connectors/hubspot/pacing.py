"""HubSpot's pacing: the rolling burst window, the search budget and the daily guard."""

from __future__ import annotations

import logging
import threading
import time

import httpx

from ..errors import QuotaExhausted
from ..pacing import Clock, Gate, Rolling, Sleep, header_int

log = logging.getLogger(__name__)


class HubSpotPacer:
    """HubSpot: the rolling 10-second window, the search budget and the daily guard.

    Until the first rate-limit headers arrive, the window is the lowest private-app tier
    (100 per 10 s [API.md §1.8]). HubSpot sends ``X-HubSpot-RateLimit-*`` on every
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
        # Search: 5 requests/s per token, no headers [API.md §1.4].
        self._burst = Rolling(default_max, default_interval)
        self._search = Rolling(search_per_second, 1.0)
        self._daily_reserve = daily_reserve
        self._daily_remaining: int | None = None
        self._headerless_after = headerless_after
        self._headerless = 0  # successful non-search responses without headers, before any had
        self._limit_shown = False  # rate-limit headers or a 429 seen on a non-search call
        self._gate = Gate(clock, sleep, margin)
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
        budget: Rolling = getattr(self._local, "budget", self._burst)
        self._local.budget = self._burst
        with self._gate.lock:
            now = self._gate.clock()
            budget.landed(now)
            if response is None or budget is self._search:
                return
            limit = header_int(response.headers, "X-HubSpot-RateLimit-Max")
            interval_ms = header_int(response.headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
            remaining = header_int(response.headers, "X-HubSpot-RateLimit-Remaining")
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
            daily = header_int(response.headers, "X-HubSpot-RateLimit-Daily-Remaining")
            if daily is not None:
                self._daily_remaining = daily
