"""Per-route call counters and a timeline of recent calls, for tests and benchmarks
(``GET /_sandbox/stats``, ``GET /_sandbox/stats/calls``)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from .clock import Clock

#: Calls the timeline keeps (the oldest go first); about 100 bytes each.
TIMELINE_SIZE = 100_000


class Stats:
    def __init__(self, timeline_size: int = TIMELINE_SIZE, clock: Clock | None = None) -> None:
        self._clock = clock or Clock()
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str, str, int]] = Counter()
        self._faults: Counter[tuple[str, str]] = Counter()
        self._bytes = 0
        # (unix seconds the response was ready, vendor, method, route template, status)
        self._timeline: deque[tuple[float, str, str, str, int]] = deque(maxlen=timeline_size)
        self._recorded = 0

    def record(self, vendor: str, method: str, route: str, status: int, nbytes: int) -> None:
        at = self._clock.time()
        with self._lock:
            self._calls[(vendor, method, route, status)] += 1
            self._bytes += nbytes
            self._timeline.append((at, vendor, method, route, status))
            self._recorded += 1

    def record_fault(self, vendor: str, kind: str) -> None:
        with self._lock:
            self._faults[(vendor, kind)] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._bytes = 0
            self._timeline.clear()
            self._recorded = 0

    def timeline(self, vendor: str | None = None) -> dict[str, Any]:
        """``{"calls": [[unix_s, vendor, method, route, status], ...], "dropped": n}``: the
        calls answered since the last reset, oldest first, the time being when the response
        was ready; ``dropped`` counts the oldest ones the bounded timeline no longer holds."""
        with self._lock:
            calls = list(self._timeline)
            dropped = self._recorded - len(calls)
        return {
            "calls": [list(c) for c in calls if vendor is None or c[1] == vendor],
            "dropped": dropped,
        }

    def snapshot(self) -> dict[str, Any]:
        """``{"total": n, "bytes": n, "vendors": {v: {"calls": n, "statuses": {...},
        "routes": {"GET /path": {"calls": n, "statuses": {"200": n}}}, "faults": {...}}}}``."""
        with self._lock:
            calls = list(self._calls.items())
            faults = list(self._faults.items())
            total_bytes = self._bytes
        vendors: dict[str, Any] = {}
        for (vendor, method, route, status), n in calls:
            v = vendors.setdefault(vendor, {"calls": 0, "statuses": {}, "routes": {}, "faults": {}})
            v["calls"] += n
            v["statuses"][str(status)] = v["statuses"].get(str(status), 0) + n
            r = v["routes"].setdefault(f"{method} {route}", {"calls": 0, "statuses": {}})
            r["calls"] += n
            r["statuses"][str(status)] = r["statuses"].get(str(status), 0) + n
        for (vendor, kind), n in faults:
            v = vendors.setdefault(vendor, {"calls": 0, "statuses": {}, "routes": {}, "faults": {}})
            v["faults"][kind] = n
        return {
            "total": sum(v["calls"] for v in vendors.values()),
            "bytes": total_bytes,
            "vendors": vendors,
        }
