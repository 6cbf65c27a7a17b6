"""Per-route call counters, for tests and benchmarks (``GET /_sandbox/stats``)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str, str, int]] = Counter()
        self._faults: Counter[tuple[str, str]] = Counter()
        self._bytes = 0

    def record(self, vendor: str, method: str, route: str, status: int, nbytes: int) -> None:
        with self._lock:
            self._calls[(vendor, method, route, status)] += 1
            self._bytes += nbytes

    def record_fault(self, vendor: str, kind: str) -> None:
        with self._lock:
            self._faults[(vendor, kind)] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._bytes = 0

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
