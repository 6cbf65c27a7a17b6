"""Record validation that is not the pipeline's bottleneck.

Every record is checked twice: against its stream's SCHEMA (what the tap promised) and, once
mapped, against its canonical schema (schemas/v1, what scoring relies on). The hot path is a
compiled validator (``jsonschema-rs``: about 240k records/s here, bench/PERF-NOTES.md); only a
record that fails is explained, by ``jsonschema`` (the reference implementation), as JSON pointers
and reasons. Reasons name the rule and what the schema expects, never the value (it may be PII).

Of the schemas' ``format`` keywords, ``date-time`` and ``date`` are checked (others are notes:
a CRM's e-mail or URL fields hold what people typed). A time must parse and lie within the run's
:class:`TimeBounds`: a record with ``zzz-not-a-date`` or ``9999-12-31`` as its modification time
would otherwise pin its stored row forever (the store keeps the newest version).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs

from crm_connectors.timefmt import EPOCH, iso_to_ms, ms_to_iso

CANONICAL_VERSION = "v1"
ENTITIES = ("account", "contact", "deal", "ticket", "conversation", "nps_response", "usage")


#: The formats checked; the others are left unchecked.
TIME_FORMATS = ("date-time", "date")


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The plausible times of one run, in epoch ms: a date-time or date outside them is invalid."""

    earliest_ms: int
    latest_ms: int

    @classmethod
    def around(cls, now: dt.datetime, earliest: dt.date, max_future_days: int) -> TimeBounds:
        """From ``earliest`` to ``max_future_days`` after ``now``."""
        start = dt.datetime.combine(earliest, dt.time(), tzinfo=dt.timezone.utc)
        return cls(_ms(start), _ms(now + dt.timedelta(days=max_future_days)))

    def ms(self, value: str) -> int | None:
        """Epoch ms of a date-time or date text within the bounds, else None."""
        try:
            ms = iso_to_ms(value)
        except (ValueError, OverflowError):
            return None
        return ms if self.earliest_ms <= ms <= self.latest_ms else None

    def checks(self) -> dict[str, Callable[[Any], bool]]:
        """The format checks of :data:`TIME_FORMATS` (a date may carry a time, as HubSpot's do;
        digits alone are no date-time, though :func:`iso_to_ms` reads them as epoch ms)."""

        # The common shapes (``2025-03-04T05:06:07.123Z``, Salesforce's ``...123+0000``, a
        # plain date) compare as text with the bounds in the same shape, once the text is known
        # to be a real time: 100,000 records with six date-times each validated in 0.82 s
        # instead of 1.79 s when every value was parsed to epoch ms (measured 2026-12-03; the
        # two agree: tests/test_target_input.py, test_the_quick_time_checks_agree...).
        low, high = ms_to_iso(self.earliest_ms)[:23], ms_to_iso(self.latest_ms)[:23]
        parse = dt.datetime.fromisoformat

        def plausible(value: Any) -> bool:  # a format applies to strings only
            if not isinstance(value, str):
                return True
            size = len(value)
            if (size == 24 and value[23] == "Z") or (size == 28 and value[23:] == "+0000"):
                head = value[:23]
            elif size == 10:
                head = value
            else:
                head = ""
            if not head or head[4] != "-" or (size > 10 and head[10] != "T"):
                return not value.isdigit() and self.ms(value) is not None
            try:
                parse(head)
            except ValueError:
                return False
            return low[:size] <= head <= high if size == 10 else low <= head <= high

        return dict.fromkeys(TIME_FORMATS, plausible)

    def describe(self) -> str:
        first, last = (
            str((EPOCH + dt.timedelta(milliseconds=ms)).date())
            for ms in (self.earliest_ms, self.latest_ms)
        )
        return f"from {first} to {last}"


def _ms(when: dt.datetime) -> int:
    return (when - EPOCH) // dt.timedelta(milliseconds=1)


#: Any time that parses (a check with no run to bound it).
ANY_TIME = TimeBounds(
    _ms(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)),
    _ms(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)),
)


def _only_time_formats(schema: Any) -> Any:
    """``schema`` without the ``format`` keywords that are not :data:`TIME_FORMATS`."""
    if isinstance(schema, dict):
        return {
            k: _only_time_formats(v)
            for k, v in schema.items()
            if not (k == "format" and isinstance(v, str) and v not in TIME_FORMATS)
        }
    if isinstance(schema, list):
        return [_only_time_formats(v) for v in schema]
    return schema


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _reason(error: jsonschema.ValidationError, bounds: TimeBounds) -> str:
    keyword = str(error.validator)
    if keyword == "format":
        return f"format: expected a {error.validator_value} {bounds.describe()}"
    if keyword in ("required", "additionalProperties", "dependentRequired"):
        return f"{keyword}: {error.message}"  # names properties, never values
    expected = json.dumps(error.validator_value, sort_keys=True, default=str)
    if len(expected) > 200:
        expected = expected[:197] + "..."
    return f"{keyword}: expected {expected}"


class Validator:
    """One schema, compiled once, its times checked against ``bounds``."""

    def __init__(self, schema: Mapping[str, Any], bounds: TimeBounds = ANY_TIME) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self.schema = _only_time_formats(dict(schema))
        self.bounds = bounds
        checks = bounds.checks()
        self._fast = jsonschema_rs.validator_for(self.schema, validate_formats=True, formats=checks)
        self._checker = jsonschema.FormatChecker(formats=())
        for name, check in checks.items():
            self._checker.checks(name)(check)
        self._slow: jsonschema.Draft202012Validator | None = None

    def is_valid(self, record: Any) -> bool:
        return bool(self._fast.is_valid(record))

    def explain(self, record: Any) -> list[tuple[str, str]]:
        """``(json_pointer, reason)`` of each failure, most specific first."""
        if self._slow is None:
            self._slow = jsonschema.Draft202012Validator(self.schema, format_checker=self._checker)
        errors = sorted(self._slow.iter_errors(record), key=lambda e: list(e.absolute_path))
        return [(_pointer(e.absolute_path), _reason(e, self.bounds)) for e in errors] or [
            ("", "invalid (the compiled validator and jsonschema disagree)")
        ]


@cache
def canonical_schema(entity: str) -> dict[str, Any]:
    text = (
        resources.files("target_health")
        .joinpath(f"schemas/{CANONICAL_VERSION}/{entity}.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def canonical_validator(entity: str, bounds: TimeBounds = ANY_TIME) -> Validator:
    return Validator(canonical_schema(entity), bounds)
