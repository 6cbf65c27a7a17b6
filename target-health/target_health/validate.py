"""Record validation that is not the pipeline's bottleneck.

Every record is checked twice: against its stream's SCHEMA (what the tap promised) and, once
mapped, against its canonical schema (schemas/v1, what scoring relies on). The hot path is a
compiled validator (``jsonschema-rs``: about 1M records/s here, PERF-NOTES.md); only a record
that fails is explained, by ``jsonschema`` (the reference implementation), as JSON pointers and
reasons. Reasons name the rule and what the schema expects, never the value (it may be PII).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs

CANONICAL_VERSION = "v1"
ENTITIES = ("account", "contact", "deal", "ticket", "conversation", "nps_response", "usage")


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _reason(error: jsonschema.ValidationError) -> str:
    keyword = str(error.validator)
    if keyword in ("required", "additionalProperties", "dependentRequired"):
        return f"{keyword}: {error.message}"  # names properties, never values
    expected = json.dumps(error.validator_value, sort_keys=True, default=str)
    if len(expected) > 200:
        expected = expected[:197] + "..."
    return f"{keyword}: expected {expected}"


class Validator:
    """One schema, compiled once."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self._fast = jsonschema_rs.validator_for(self.schema)
        self._slow: jsonschema.Draft202012Validator | None = None

    def is_valid(self, record: Any) -> bool:
        return bool(self._fast.is_valid(record))

    def explain(self, record: Any) -> list[tuple[str, str]]:
        """``(json_pointer, reason)`` of each failure, most specific first."""
        if self._slow is None:
            self._slow = jsonschema.Draft202012Validator(self.schema)
        errors = sorted(self._slow.iter_errors(record), key=lambda e: list(e.absolute_path))
        return [(_pointer(e.absolute_path), _reason(e)) for e in errors] or [
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
def canonical_validator(entity: str) -> Validator:
    return Validator(canonical_schema(entity))
