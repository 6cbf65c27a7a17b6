"""Singer output with orjson, buffered by the writer itself.

singer-sdk's default writer encodes with simplejson and flushes stdout after every message. This
one encodes with orjson (about 14x simplejson on CRM records, bench/PERF-NOTES.md) and writes RECORD
lines in blocks of about 64 KB, flushing after every other message. The block is the writer's own:
with ``PYTHONUNBUFFERED=1`` (set in many container images, and by some orchestrators) stdout has no
buffer, and one write system call per record cost a third of a HubSpot sync (bench/). Records and
the STATE that covers them share one ordered byte stream, so a crash can lose unwritten records
only together with the STATE after them: a rerun from the last flushed STATE reads them again.
"""

from __future__ import annotations

import atexit
import datetime as dt
import decimal
import sys
from typing import IO, Any

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
BLOCK_BYTES = 64 * 1024


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

    def __init__(self) -> None:
        super().__init__()
        self._block: list[bytes] = []
        self._size = 0
        self._flushing = False
        atexit.register(self.flush)  # whatever is left when the process ends normally

    def serialize_message(self, message: Message) -> bytes:
        return encode(message.to_dict())

    def write_message(self, message: Message) -> None:
        self._add(self.serialize_message(message), record=isinstance(message, RecordMessage))

    def write_record_dict(self, message: dict[str, Any]) -> None:
        """A RECORD message given as the dict ``RecordMessage.to_dict`` would return."""
        self._add(encode(message), record=True)

    def _add(self, line: bytes, *, record: bool) -> None:
        self._block.append(line)
        self._size += len(line)
        if self._size >= BLOCK_BYTES or not record:
            self.flush()

    def flush(self) -> None:
        """Write the pending lines to stdout and flush it.

        Re-entrant: a signal handler that writes while a flush is blocked on a full pipe (the
        SDK writes a last STATE on SIGTERM) only adds its line, which the interrupted flush
        writes after the lines it holds, so no line is ever cut in two."""
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._block:
                data = b"".join(self._block)
                self._block.clear()
                self._size = 0
                out: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
                if out is None:  # stdout replaced by a text stream (tests capturing output)
                    sys.stdout.write(data.decode("utf-8"))
                else:
                    view = memoryview(data)
                    while view:  # an unbuffered stdout (FileIO) may write part of a block
                        view = view[out.write(view) or 0 :]
        finally:
            self._flushing = False
        sys.stdout.flush()
