"""target-baseline: a plain singer-sdk target writing each record as a row of a SQLite file.

Written the way the SDK's cookiecutter template lays one out (a ``Target`` and a ``BatchSink``),
with the SDK's defaults kept: every record validated against its stream's schema with the SDK's
jsonschema validator, date-times parsed, batches of the SDK's default size. The bench's reference
point for the whole pipeline (bench/pipeline.py).

Run it from the project venv: ``python bench/baseline/target_baseline.py --config config.json``
with ``{"database": "/path/to/out.sqlite"}``, Singer messages on stdin.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target


class SQLiteSink(BatchSink):
    """Each batch of a stream inserted in one transaction: (stream, key, record as JSON)."""

    def process_batch(self, context: dict[str, Any]) -> None:
        records = context.get("records") or []
        keys = self.key_properties or []
        rows = [
            (
                self.stream_name,
                ":".join(str(r.get(k)) for k in keys),
                json.dumps(r, default=str),
            )
            for r in records
        ]
        with sqlite3.connect(self.config["database"]) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS records (stream TEXT, key TEXT, record TEXT)")
            conn.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
        conn.close()


class TargetBaseline(Target):
    """Singer records into one SQLite table."""

    name = "target-baseline"
    config_jsonschema = th.PropertiesList(
        th.Property("database", th.StringType, required=True, description="SQLite file"),
    ).to_dict()
    default_sink_class = SQLiteSink


if __name__ == "__main__":
    TargetBaseline.cli()
