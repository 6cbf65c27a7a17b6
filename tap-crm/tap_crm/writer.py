"""Singer output with orjson into a buffered stdout.

singer-sdk's default writer encodes with simplejson and flushes stdout after every message. This
one encodes with orjson (about 12x simplejson on CRM records, PERF-NOTES.md) and flushes only after
a non-RECORD message. Records and the STATE that covers them share one ordered byte stream, so a
crash can lose unflushed records only together with the STATE after them: a rerun from the last
flushed STATE reads them again.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys
from typing import IO, Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message, default=_default, option=_OPTIONS)


class OrjsonWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages as JSON lines with orjson."""

    def serialize_message(self, message: Message) -> bytes:
        return encode(message.to_dict())

    def write_message(self, message: Message) -> None:
        out: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
        line = self.serialize_message(message)
        if out is None:  # stdout replaced by a text stream (tests capturing output)
            sys.stdout.write(line.decode("utf-8"))
            if not isinstance(message, RecordMessage):
                sys.stdout.flush()
            return
        out.write(line)
        if not isinstance(message, RecordMessage):
            out.flush()
