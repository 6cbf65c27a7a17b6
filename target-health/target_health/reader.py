"""Singer input with orjson, read as bytes.

singer-sdk's default reader decodes stdin to text and parses every line with the standard
library (floats as Decimal): about a tenth of target-health's time in a pipeline (bench/). This
one reads stdin's bytes and parses with orjson (about 3x, PERF-NOTES.md). Numbers arrive as the
tap wrote them: tap-crm emits floats with orjson, whose shortest round-trip form parses back to
the same float. A line that is not JSON is reported by its number and orjson's reason, never
quoted: records carry personal data.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson
from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.singerlib.encoding import GenericSingerReader


class OrjsonReader(GenericSingerReader[Any]):
    """Reads Singer messages from stdin's bytes (or a given text or binary stream) with orjson."""

    def __init__(self) -> None:
        super().__init__()
        self._lines = 0

    @property
    def default_input(self) -> IO[Any]:
        return getattr(sys.stdin, "buffer", sys.stdin)

    def deserialize_json(self, line: Any) -> dict:
        self._lines += 1
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputLine(f"input line {self._lines} is not valid JSON: {exc}") from None
        if not isinstance(message, dict):
            raise InvalidInputLine(f"input line {self._lines} is not a JSON object")
        return message
