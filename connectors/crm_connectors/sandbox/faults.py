"""Fault injection: make the sandbox misbehave the way production CRMs do.

A :class:`Fault` matches requests by vendor, method and path glob, and fires by probability, on
every Nth matching call, on a list of matching call numbers, or always; ``max_times`` caps it.
Faults are set at start (``crm-sandbox serve --fault ...`` or ``--faults FILE``) or at run time
(``POST /_sandbox/faults``). The first fault that fires decides the request's fate:

``rate_limit``     the vendor's throttle response (HubSpot/Intercom 429, Salesforce 403
                   ``REQUEST_LIMIT_EXCEEDED``), with ``Retry-After`` when ``retry_after`` is set;
                   only on routes the vendor's limits cover (not Salesforce's token endpoint)
``server_error``   a 5xx (``status``, default 503) with the vendor's error body
``slow``           the request is served normally after ``delay`` seconds
``drop``           the connection is closed without a response
``truncate``       the response headers promise the full body, half of it is sent, then the
                   connection closes
``expired_token``  the request's access token expires now and the vendor's 401 is returned;
                   a static token gets the same 401 for this request only
``malformed``      the request is served, then its response is spoiled as ``variant`` says
                   (:data:`MALFORMED`): what proxies, gateways and API bugs send back
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

KINDS = ("rate_limit", "server_error", "slow", "drop", "truncate", "expired_token", "malformed")

#: ``malformed`` variants: a captive portal's or gateway's HTML, bodies that are no JSON or not
#: UTF-8, JSON of the wrong type, pages whose record lists are missing or hold the wrong things,
#: numbers as text, a huge page, JSON nested too deep to parse.
MALFORMED = (
    "html_200", "html_502", "not_json", "invalid_utf8", "empty", "null", "list", "string",
    "no_lists", "lists_as_objects", "items_null", "items_strings", "ids_objects",
    "numbers_as_text", "huge", "deep",
)  # fmt: skip
_HTML = b"<!DOCTYPE html><html><head><title>Error</title></head><body>Try again</body></html>"


def spoil(variant: str, status: int, body: bytes, content_type: str) -> tuple[int, bytes, str]:
    """A response as the ``malformed`` fault's ``variant`` spoils it."""
    if variant == "html_200":
        return 200, _HTML, "text/html"
    if variant == "html_502":
        return 502, _HTML, "text/html"
    if variant == "not_json":
        return 200, b"<error>upstream</error>", content_type
    if variant == "empty":
        return status, b"", content_type
    if variant in ("null", "list", "string"):
        return status, {"null": b"null", "list": b"[]", "string": b'"ok"'}[variant], content_type
    if variant == "invalid_utf8":
        at = body.find(b'":"')
        return (
            status,
            (body[: at + 3] + b"\xff\xfe" + body[at + 3 :]) if at >= 0 else b"\xff",
            content_type,
        )
    if variant == "deep":
        return status, b"[" * 100_000 + b"]" * 100_000, content_type
    try:
        doc = orjson.loads(body) if body else None
    except ValueError:
        return status, body, content_type
    if variant == "huge":
        doc = {"_padding": "x" * (16 << 20), **doc} if isinstance(doc, dict) else doc
    elif variant == "numbers_as_text":
        doc = _numbers_as_text(doc)
    elif isinstance(doc, dict):
        doc = {
            k: _spoil_list(variant, v)
            for k, v in doc.items()
            if not (variant == "no_lists" and isinstance(v, list))
        }
    return status, orjson.dumps(doc), content_type


def _spoil_list(variant: str, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    if variant == "lists_as_objects":
        return {}
    if variant == "items_null":
        return [None for _ in value]
    if variant == "items_strings":
        return ["x" for _ in value]
    if variant == "ids_objects":
        return [
            {k: ({"x": 1} if k in ("id", "Id") else v) for k, v in item.items()}
            if isinstance(item, dict)
            else item
            for item in value
        ]
    return value


def _numbers_as_text(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _numbers_as_text(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_numbers_as_text(v) for v in doc]
    if isinstance(doc, int | float) and not isinstance(doc, bool):
        return "NaN"
    return doc


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
    variant: str = ""
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
        if self.kind == "malformed" and self.variant not in MALFORMED:
            raise ValueError(
                f"malformed fault variant {self.variant!r}; expected one of {', '.join(MALFORMED)}"
            )
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

    def decide(
        self, vendor: str, method: str, path: str, exempt: tuple[str, ...] = ()
    ) -> Fault | None:
        """The fault that fires for this request, if any; faults of an ``exempt`` kind do not
        match it (a ``rate_limit`` on a route the vendor's limits do not cover)."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in exempt or not fault.matches(vendor, method, path):
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
