"""Exact conversions between ISO-8601 timestamps and epoch milliseconds.

``int(datetime.timestamp() * 1000)`` is off by one millisecond for about 0.6% of values (binary
floating point), and a bookmark one millisecond early re-reads records while one late would skip
them. These helpers use integer ``timedelta`` arithmetic only.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = dt.timedelta(milliseconds=1)
_FRACTION = re.compile(r"\.(\d+)")


def iso_to_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 timestamp (``2019-10-30T03:30:17.883Z``, ``...+0000``,
    ``...+00:00``; naive means UTC; any number of fraction digits, as HubSpot trims its trailing
    zeros) or of an epoch-ms text. Sub-millisecond digits are floored. ValueError for anything
    else."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    if "." in value:  # Python 3.10's fromisoformat takes only 3 or 6 fraction digits
        value = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], value, count=1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-3] != ":" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]  # +0000 -> +00:00 (Python 3.10's fromisoformat)
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _MS


def ms_to_iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2019-10-30T03:30:17.883Z``."""
    when = EPOCH + dt.timedelta(milliseconds=ms)
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"


def canonical_iso(text: str) -> str:
    """``text`` in :func:`ms_to_iso`'s form; returned as is when it already is (HubSpot's own
    form, so the common case costs no parsing)."""
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[10] == "T":
        return text
    return ms_to_iso(iso_to_ms(text))
