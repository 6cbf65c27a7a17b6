"""Fields a loader owns in the CRMs, as data, and the one canonical form of their values.

A :class:`Field` is logical (``score``, a number from 0 to 100); each CRM's ``writer.py`` turns
it into a :class:`CrmField` with that CRM's API name and type, and creates, reads and writes it
(crm_connectors.writing). Which fields exist is the loader's business (target-health's
writeback/fields.py); how each kind is stored is the CRM's.

**Canonical values.** :func:`normalize` turns a value into the form every writer sends and
``read`` returns: numbers as ``float`` rounded to their decimals (so what is read back equals
what was sent, and a rerun plans no change), enumerations and text as ``str`` (text longer than
``max_length`` is cut to ``max_length - 1`` characters and an ellipsis), datetimes as
``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds), and ``None`` for empty ("" and None both clear a
field). :func:`from_crm` reads a CRM's value back leniently.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["number", "enum", "text", "datetime"]


class InvalidValue(ValueError):
    """A value that cannot be written to a field; the message names the field, never the value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Field:
    """One logical field a loader owns."""

    key: str
    label: str
    kind: Kind
    description: str
    options: tuple[str, ...] = ()  # enum
    low: float | None = None  # number bounds, inclusive
    high: float | None = None
    decimals: int = 1  # numbers are rounded to this many decimals
    max_length: int = 255  # text


@dataclass(frozen=True, slots=True)
class CrmField:
    """A logical field as defined in one CRM: its API name and its type in the CRM's words."""

    field: Field
    name: str
    type: str

    @property
    def key(self) -> str:
        return self.field.key

    @property
    def label(self) -> str:
        return self.field.label

    def describe(self) -> str:
        """One line for a person creating the field by hand."""
        text = f"{self.name} (label {self.label!r}, type {self.type}"
        if self.field.options:
            text += f", options {', '.join(self.field.options)}"
        return text + ")"


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":" and text[-4:].isdigit():
            text = text[:-2] + ":" + text[-2:]  # +0000 (Salesforce) -> +00:00 for Python 3.10
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def iso_seconds(when: dt.datetime) -> str:
    """``2026-01-02T03:04:05Z``: the canonical datetime text."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_seconds(text: str) -> int:
    """Unix seconds of a datetime text (canonical or any ISO 8601 form)."""
    when = _parse_time(text)
    if when is None:
        raise ValueError("not an ISO 8601 datetime")
    return int(when.timestamp())


def normalize(f: Field, value: Any) -> Any:
    """``value`` in the canonical form of field ``f`` (see the module doc); raises
    :class:`InvalidValue` when it cannot be written."""
    key = f.key
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if f.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InvalidValue(key, "not a number")
        try:
            number = float(value)
        except ValueError:
            raise InvalidValue(key, "not a number") from None
        if not math.isfinite(number):
            raise InvalidValue(key, "not a finite number")
        number = round(number, f.decimals) + 0.0  # + 0.0: no negative zero
        if (f.low is not None and number < f.low) or (f.high is not None and number > f.high):
            raise InvalidValue(key, f"outside {f.low:g}..{f.high:g}")
        return number
    if f.kind == "enum":
        if not isinstance(value, str) or value not in f.options:
            raise InvalidValue(key, f"not one of the options {', '.join(f.options)}")
        return value
    if f.kind == "text":
        if not isinstance(value, str):
            raise InvalidValue(key, "not text")
        return value if len(value) <= f.max_length else value[: f.max_length - 1] + "…"
    when = _parse_time(value)
    if when is None:
        raise InvalidValue(key, "not an ISO 8601 datetime")
    return iso_seconds(when)


def from_crm(cf: CrmField, raw: Any) -> Any:
    """A value as the CRM returned it, in canonical form. Lenient: a value that does not fit
    the field (a person typed it, or the CRM's definition drifted) comes back as it is, so a
    plan sees the difference and overwrites it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = cf.field.kind
    if kind == "number" and not isinstance(raw, bool):
        try:
            number = float(raw)  # HubSpot returns numbers as text
        except (TypeError, ValueError):
            return raw
        return round(number, cf.field.decimals) + 0.0 if math.isfinite(number) else raw
    if kind == "datetime":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            # Intercom date attributes hold unix seconds.
            return iso_seconds(dt.datetime.fromtimestamp(int(raw), tz=dt.timezone.utc))
        when = _parse_time(raw)
        return iso_seconds(when) if when is not None else raw
    return raw
