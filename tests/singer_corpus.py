"""Malformed Singer input: a small good stream, and the faults to cut into it.

:func:`good_lines` is a valid tap output of two mapped streams and one the target does not map,
with STATE messages between them. :data:`LINE_FAULTS` are lines no target can take (not JSON,
not an object, no or an unknown type, a RECORD before its SCHEMA or holding no object, a
SCHEMA that is no JSON Schema, a BATCH whose files are gone...); :func:`corpus` cuts each into
the good stream at several places. Every fault line carries :data:`CANARY` where it can hold a
value, so a test can tell that an error message never quotes the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CANARY = "canary-7f3a@example.com"
_TS = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "hubspot_companies": {
        "properties": {
            "id": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "domain": {"type": ["string", "null"]},
            "hs_lastmodifieddate": _TS,
        }
    },
    "hubspot_contacts": {
        "properties": {
            "id": {"type": "string"},
            "email__token": {"type": ["string", "null"]},
            "lastmodifieddate": _TS,
        }
    },
    "not_a_crm_stream": {"properties": {"id": {"type": "string"}}},
}


def _schema(stream: str) -> dict[str, Any]:
    return {"type": "SCHEMA", "stream": stream, "schema": SCHEMAS[stream], "key_properties": ["id"]}


def _record(stream: str, i: int) -> dict[str, Any]:
    when = f"2026-10-{1 + i % 28:02d}T08:00:00.000Z"
    fields = {
        "hubspot_companies": {"name": f"Company {i}", "domain": f"c{i}.example.com",
                              "hs_lastmodifieddate": when},
        "hubspot_contacts": {"email__token": f"tok:v1:{i:04d}", "lastmodifieddate": when},
        "not_a_crm_stream": {},
    }[stream]  # fmt: skip
    return {"type": "RECORD", "stream": stream, "record": {"id": str(i), **fields}}


def _state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {"position": n}}}


def good_messages() -> list[dict[str, Any]]:
    """3 schemas, 24 records, a STATE after every 4 records."""
    out: list[dict[str, Any]] = [_schema(s) for s in SCHEMAS]
    streams = list(SCHEMAS)
    for i in range(24):
        out.append(_record(streams[i % 3], i))
        if i % 4 == 3:
            out.append(_state(i))
    return out


def encode(messages: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(m).encode() + b"\n" for m in messages]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _rec(**overrides: Any) -> bytes:
    message = {"type": "RECORD", "stream": "hubspot_companies",
               "record": {"id": "99", "name": CANARY}} | overrides  # fmt: skip
    return _json({k: v for k, v in message.items() if v is not _DROP})


def _sch(**overrides: Any) -> bytes:
    message = {"type": "SCHEMA", "stream": "late_stream",
               "schema": {"properties": {"id": {"type": "string", "description": CANARY}}},
               "key_properties": ["id"]} | overrides  # fmt: skip
    return _json({k: v for k, v in message.items() if v is not _DROP})


_DROP = object()
_RECORD = json.dumps({"type": "RECORD", "stream": "hubspot_companies",
                      "record": {"id": "99", "name": CANARY}}).encode()  # fmt: skip

#: name -> a line the target cannot take.
LINE_FAULTS: dict[str, bytes] = {
    # not JSON
    "truncated": _RECORD[: len(_RECORD) // 2] + b"\n",
    "open brace": b"{\n",
    "plain text": f"hello {CANARY}\n".encode(),
    "nul byte": b"\x00" + _RECORD + b"\n",
    "invalid utf-8": _RECORD.replace(b"canary", b"\xff\xfecanary") + b"\n",
    "trailing garbage": _RECORD + b" x\n",
    "two objects": _RECORD + _RECORD + b"\n",
    "nan": b'{"type": "RECORD", "stream": "hubspot_companies", "record": {"id": NaN}}\n',
    "single quotes": _RECORD.replace(b'"', b"'") + b"\n",
    # JSON, not an object
    "a string": _json(CANARY),
    "a list": _json([{"type": "RECORD"}]),
    "a number": _json(42),
    "null": _json(None),
    "true": _json(True),
    # the type
    "no type": _rec(type=_DROP),
    "type null": _rec(type=None),
    "type a number": _rec(type=7),
    "type lowercase": _rec(type="record"),
    "type unknown": _rec(type="UPSERT"),
    "type empty": _rec(type=""),
    "type a list": _rec(type=["RECORD"]),
    # RECORD
    "record without stream": _rec(stream=_DROP),
    "record stream empty": _rec(stream=""),
    "record stream a number": _rec(stream=3),
    "record before schema": _rec(stream="never_described"),
    "record missing": _rec(record=_DROP),
    "record a string": _rec(record=CANARY),
    "record a list": _rec(record=[CANARY]),
    "record a number": _rec(record=5),
    "record null": _rec(record=None),
    # SCHEMA
    "schema missing": _sch(schema=_DROP),
    "schema a string": _sch(schema=CANARY),
    "schema without properties": _sch(schema={"type": "object", "description": CANARY}),
    "schema properties a list": _sch(schema={"properties": [CANARY]}),
    "schema not a json schema": _sch(schema={"properties": {"id": {"type": 12}}}),
    "schema key_properties a string": _sch(key_properties="id"),
    "schema key_properties numbers": _sch(key_properties=[1]),
    "schema without stream": _sch(stream=_DROP),
    # STATE, ACTIVATE_VERSION, BATCH
    "state without value": _json({"type": "STATE", "bookmarks": {}}),
    "activate without version": _json({"type": "ACTIVATE_VERSION", "stream": "hubspot_companies"}),
    "activate unknown stream": _json({"type": "ACTIVATE_VERSION", "stream": "x", "version": 1}),
    "batch files gone": _json({"type": "BATCH", "stream": "hubspot_companies",
                               "encoding": {"format": "jsonl", "compression": "gzip"},
                               "manifest": ["file:///nonexistent/batch-0001.json.gz"]}),
    "batch without manifest": _json({"type": "BATCH", "stream": "hubspot_companies",
                                     "encoding": {"format": "jsonl"}}),
    "batch encoding a string": _json({"type": "BATCH", "stream": "hubspot_companies",
                                      "encoding": "jsonl", "manifest": []}),
    "batch unknown stream": _json({"type": "BATCH", "stream": "x",
                                   "encoding": {"format": "jsonl"}, "manifest": []}),
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """Good input with one fault line at ``line`` (1-based)."""

    name: str
    lines: list[bytes]
    line: int

    def records_before(self) -> int:
        return sum(b'"type": "RECORD"' in raw for raw in self.lines[: self.line - 1])

    def last_state_before(self) -> dict[str, Any] | None:
        states = [json.loads(r) for r in self.lines[: self.line - 1] if b'"type": "STATE"' in r]
        return states[-1]["value"] if states else None


#: Where a fault goes: first line, right after the schemas, just after a STATE, mid-batch, last.
POSITIONS = (0, 3, 8, 17, None)


def corpus() -> Iterator[Case]:
    good = encode(good_messages())
    for name, fault in LINE_FAULTS.items():
        for at in POSITIONS:
            index = len(good) if at is None else at
            yield Case(f"{name} @{index + 1}", [*good[:index], fault, *good[index:]], index + 1)
