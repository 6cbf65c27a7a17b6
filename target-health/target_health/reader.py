"""Singer input with orjson, read as bytes, through a guard that stops at the first bad line.

singer-sdk's default reader decodes stdin to text and parses every line with the standard
library (floats as Decimal): about a tenth of target-health's time in a pipeline (bench/). This
one reads stdin's bytes and parses with orjson (about 3x, bench/PERF-NOTES.md). Numbers arrive as
the tap wrote them: tap-crm emits floats with orjson, whose shortest round-trip form parses back
to the same float.

Before a message reaches the target it is checked for what the target relies on (the Singer
spec's required keys and their types, a SCHEMA before a stream's RECORDs, a valid JSON Schema,
BATCH files that can be read). The first line that fails stops the reading: the target then
stores the records before it and forwards the last STATE before it, as at the end of good input,
and fails the run with :attr:`OrjsonReader.fault`, one line naming the line number and what is
wrong, never the line's content (records carry personal data). Reading on past a bad line would
let a later STATE move a tap's bookmark past the records it lost. Blank lines are skipped.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import jsonschema
import orjson
from singer_sdk.singerlib.encoding import GenericSingerReader

#: The longest stream name or message type quoted in a fault.
_QUOTED = 60


class InputFault(Exception):
    """A line of input the target cannot take (the message names only where and what)."""


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text[:_QUOTED] + ("..." if len(text) > _QUOTED else ""))


class OrjsonReader(GenericSingerReader[Any]):
    """Reads Singer messages from stdin's bytes (or a given text or binary stream) with orjson."""

    def __init__(self) -> None:
        super().__init__()
        self._lines = 0
        self._schemas: set[str] = set()
        #: Why reading stopped before the end of the input (None: it did not).
        self.fault: str | None = None

    @property
    def default_input(self) -> IO[Any]:
        return getattr(sys.stdin, "buffer", sys.stdin)

    def process_lines(
        self, file_input: IO[Any] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        counts: Counter[str] = Counter()
        for line in file_input or self.default_input:
            self._lines += 1
            if not line.strip():
                continue
            self._current_message = line
            try:
                message = self.deserialize_json(line)
                kind = self._check(message, callbacks)
                if kind == "BATCH":
                    try:
                        callbacks[kind](message)
                    except (OSError, ValueError, KeyError, TypeError) as exc:
                        raise InputFault(
                            f"its files cannot be read ({type(exc).__name__})"
                        ) from None
                else:
                    callbacks[kind](message)
            except InputFault as exc:
                self.fault = f"input line {self._lines}: {exc}"
                break
            counts[kind] += 1
        return counts

    def deserialize_json(self, line: Any) -> dict:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputFault(
                f"not valid JSON ({exc.args[0] if exc.args else 'unreadable'})"
            ) from None
        if not isinstance(message, dict):
            raise InputFault(f"not a JSON object but a {type(message).__name__}")
        return message

    def _check(self, message: dict, callbacks: dict[str, Callable[[dict], None]]) -> str:
        """The message's type once its content is what the target relies on; else InputFault."""
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in callbacks:
            raise InputFault(f"unknown message type {_quote(kind)}")
        if kind == "STATE":
            if "value" not in message:
                raise InputFault("STATE without its value")
            return kind
        stream = message.get("stream")
        if not isinstance(stream, str) or not stream:
            raise InputFault(f"{kind} without a stream name")
        if kind == "SCHEMA":
            self._check_schema(stream, message)
            self._schemas.add(stream)
            return kind
        if stream not in self._schemas:
            raise InputFault(f"{kind} for stream {_quote(stream)} before its SCHEMA")
        if kind == "RECORD" and not isinstance(message.get("record"), dict):
            got = type(message.get("record")).__name__ if "record" in message else "nothing"
            raise InputFault(f"RECORD of stream {_quote(stream)} holds a {got}, not an object")
        if kind == "ACTIVATE_VERSION" and not isinstance(message.get("version"), int):
            raise InputFault(f"ACTIVATE_VERSION of stream {_quote(stream)} without a version")
        if kind == "BATCH" and not (
            isinstance(message.get("encoding"), dict)
            and isinstance(message.get("manifest"), list)
            and all(isinstance(f, str) for f in message["manifest"])
        ):
            raise InputFault(f"BATCH of stream {_quote(stream)} without encoding and manifest")
        return kind

    @staticmethod
    def _check_schema(stream: str, message: dict) -> None:
        schema = message.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            raise InputFault(f"SCHEMA of stream {_quote(stream)} has no properties object")
        keys = message.get("key_properties")
        if keys is not None and not (
            isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        ):
            raise InputFault(
                f"SCHEMA of stream {_quote(stream)}: key_properties is not a list of names"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "its root"
            raise InputFault(
                f"SCHEMA of stream {_quote(stream)} is not a valid JSON Schema"
                f" ({exc.validator} at {_quote(where)})"
            ) from None
