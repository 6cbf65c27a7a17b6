"""Fault injection: make the sandbox misbehave the way production CRMs do.

A :class:`Fault` matches requests by vendor, method and path glob, and fires by probability, on
every Nth matching call, on a list of matching call numbers, or always; ``max_times`` caps it.
Faults are set at start (``crm-sandbox serve --fault ...`` or ``--faults FILE``) or at run time
(``POST /_sandbox/faults``). The first fault that fires decides the request's fate:

``rate_limit``     the vendor's throttle response (HubSpot/Intercom 429, Salesforce 403
                   ``REQUEST_LIMIT_EXCEEDED``), with ``Retry-After`` when ``retry_after`` is set
``server_error``   a 5xx (``status``, default 503) with the vendor's error body
``slow``           the request is served normally after ``delay`` seconds
``drop``           the connection is closed without a response
``truncate``       the response headers promise the full body, half of it is sent, then the
                   connection closes
``expired_token``  the request's access token expires now and the vendor's 401 is returned;
                   a static token gets the same 401 for this request only
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("rate_limit", "server_error", "slow", "drop", "truncate", "expired_token")


@dataclass(slots=True)
class Fault:
    kind: str
    vendor: str = "*"
    method: str = "*"
    path: str = "*"
    probability: float | None = None
    every: int | None = None
    calls: list[int] = field(default_factory=list)
    max_times: int | None = None
    retry_after: float | None = None
    status: int | None = None
    delay: float = 1.0
    id: int = 0
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}"
            )
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError(f"fault probability must be within [0, 1], got {self.probability}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"fault 'every' must be >= 1, got {self.every}")
        if self.status is not None and not 500 <= self.status <= 599:
            raise ValueError(f"server_error status must be 5xx, got {self.status}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)} - {"id", "matched", "fired"}
        unknown = set(raw) - known - {"id", "matched", "fired"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in raw.items() if k in known})

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``kind=rate_limit,vendor=hubspot,probability=0.2,calls=3;5`` (CLI shorthand)."""
        raw: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault option {part!r} is not key=value")
            key = key.strip()
            if key in {"probability", "retry_after", "delay"}:
                raw[key] = float(value)
            elif key in {"every", "max_times", "status"}:
                raw[key] = int(value)
            elif key == "calls":
                raw[key] = [int(v) for v in value.split(";") if v]
            else:
                raw[key] = value.strip()
        return cls.from_dict(raw)

    def matches(self, vendor: str, method: str, path: str) -> bool:
        return (
            self.vendor in ("*", vendor)
            and self.method in ("*", method)
            and fnmatch.fnmatchcase(path, self.path)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Holds the active faults; :meth:`decide` is called once per request."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def clear(self, fault_id: int | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def decide(self, vendor: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(vendor, method, path):
                    continue
                if fault.max_times is not None and fault.fired >= fault.max_times:
                    continue
                fault.matched += 1
                if fault.calls:
                    fire = fault.matched in fault.calls
                elif fault.every is not None:
                    fire = fault.matched % fault.every == 0
                elif fault.probability is not None:
                    fire = self._rng.random() < fault.probability
                else:
                    fire = True
                if fire:
                    fault.fired += 1
                    return fault
        return None
