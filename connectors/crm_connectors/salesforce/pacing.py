"""Salesforce's pacing: a guard on the org's daily API allocation [API.md §2.8]."""

from __future__ import annotations

import math
import re
import threading

import httpx

from ..errors import QuotaExhausted

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforcePacer:
    """Salesforce: a guard on the org's rolling 24-hour API allocation [API.md §2.8].

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
