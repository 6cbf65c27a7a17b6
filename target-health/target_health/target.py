"""target-health: tap-crm's streams into one canonical, validated store.

For each RECORD: validate against its stream's SCHEMA, map to the canonical model
(:mod:`target_health.mapping`), validate the canonical row (schemas/v1), and upsert it in
batches (:mod:`target_health.store`). A record that fails either check goes to the quarantine
table with its stream, key, JSON pointer and reason (never its values), is counted, and the run
goes on. A record missing its key properties is quarantined too; nothing bad crashes the target.

At the end of the input the run is summarised (received, stored, quarantined, per stream) in the
``runs`` table and the log; if the invalid share is above ``max_invalid_share`` the run fails
(exit 1) before anything downstream of the store (scoring, write-back) may use it. STATE is
emitted only after the records before it are committed (singer-sdk drains before it forwards
state), so a crash loses nothing a rerun would not deliver again.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import logging
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target

from crm_connectors import registry
from crm_connectors.pii import redact_in_logs
from crm_connectors.settings import setting

from . import cli
from .compute import ComputeSummary, compute
from .mapping import Mapped, Row, mappers
from .reader import OrjsonReader
from .runlock import StoreBusy
from .scoring import ModelError, parse_settings
from .store import DEFAULT_URL, Invalid, Store, open_store
from .validate import Validator, canonical_validator
from .writeback import plan as wb
from .writeback.run import write_back

log = logging.getLogger("target_health")

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "database_url",
        th.StringType,
        default=DEFAULT_URL,
        description=(
            "Where the canonical store lives: sqlite:///<path> (default output/health.sqlite in "
            "the project) or postgresql://user@host:port/db."
        ),
    ),
    th.Property(
        "max_invalid_share",
        # A number, or its text: Meltano's own decimal kind cannot pass values from the
        # environment (4.4: "Decimal is not JSON serializable"), so meltano.yml declares a string.
        th.CustomType({"type": ["number", "string"], "pattern": r"^\s*[0-9.eE+-]+\s*$"}),
        default=0.01,
        description=(
            "Fail the run (after storing the valid records, before any scoring or write-back) "
            "when more than this share of the records received is invalid. 1 never fails."
        ),
    ),
    th.Property(
        "usage_csv",
        th.StringType,
        description=(
            "Product usage as a CSV file (columns account_external_id or domain, month, "
            "active_users, seats, logins, features_adopted), loaded at the end of each run. "
            "Usage may also arrive as a Singer stream named 'usage' with the same fields."
        ),
    ),
    th.Property(
        "scoring",
        th.ObjectType(additional_properties=True),
        description=(
            "The health model, NPS window, retention periods and segment rules, merged onto the "
            "documented defaults (target-health/SCORING.md, RETENTION.md), e.g. "
            '{"health": {"signals": {"nps": {"weight": 20}}}, "nps": {"window_days": 180}}.'
        ),
    ),
    th.Property(
        "as_of",
        th.DateType,
        description="Measure as of this date (default: today, UTC). For backfills and tests.",
    ),
    th.Property(
        "measure_every_days",
        th.IntegerType,
        default=1,
        description=(
            "Keep one snapshot per this many days: a run within that time of the model's latest "
            "snapshot stores the records but does not score again. Runs on the same day as a "
            "snapshot replace it."
        ),
    ),
    th.Property(
        "batch_size",
        th.IntegerType,
        default=5000,
        description="Records per store transaction.",
    ),
    th.Property(
        "writeback",
        th.ObjectType(
            th.Property("enabled", th.BooleanType, default=False),
            th.Property("dry_run", th.BooleanType, default=False),
            th.Property("max_band_change_share", th.NumberType, default=0.2),
            th.Property("min_accounts", th.IntegerType, default=20),
            th.Property("max_mean_score_shift", th.NumberType, default=15.0),
            th.Property("approval_arr", th.NumberType),
            th.Property("approval_accounts", th.ArrayType(th.StringType)),
            th.Property(
                "ownership",
                th.ObjectType(additional_properties=th.StringType),
                description="Per owned field: overwrite, fill_if_empty or skip_if_edited.",
            ),
            th.Property("programs", th.ArrayType(th.ObjectType(additional_properties=True))),
            th.Property(
                "lock_wait_seconds",
                th.NumberType,
                default=600,
                description="How long a run waits for another run's write-back to this store.",
            ),
            additional_properties=False,
        ),
        description=(
            "Write scores back into the CRMs at the end of each run: enabled (default false), "
            "dry_run (plan only), the blast-radius brake (max_band_change_share of the scored "
            "accounts changing band, or the mean score moving more than max_mean_score_shift "
            "points, from min_accounts up), the approval gate (approval_arr, "
            "approval_accounts), per-field ownership (overwrite, fill_if_empty, "
            "skip_if_edited), retention programs, and lock_wait_seconds (one write-back at a "
            "time per store: how long a run waits for another's). The CRM credentials are the "
            "connectors' settings, the same as tap-crm's."
        ),
    ),
).to_dict()
# The CRMs' connection settings, the same as tap-crm's (each connector declares them once), and
# write-back's own per CRM.
CONFIG_SCHEMA["properties"] |= {
    "crms": setting(
        "array",
        f"Which CRMs to write back to: any of {', '.join(registry.names())}. Default: every CRM"
        " whose credentials are set.",
    )
    | {"items": {"type": ["string"], "enum": list(registry.names())}},
    **registry.settings(writer=True),
}


def _now() -> str:
    # Microseconds: runs are ordered by these times, and two may finish within one second.
    return (
        dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


class RunStats:
    """Counts of one run, per stream."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self.unmapped: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": sum(self.received.values()),
            "stored": sum(self.stored.values()),
            "quarantined": sum(self.quarantined.values()),
            "unmapped_streams": sorted(self.unmapped),
            "streams": {
                s: {"received": n, "stored": self.stored[s], "quarantined": self.quarantined[s]}
                for s, n in sorted(self.received.items())
            },
        }

    @property
    def invalid_share(self) -> float:
        total = sum(self.received.values())
        return sum(self.quarantined.values()) / total if total else 0.0


class HealthSink(BatchSink):
    """Validates, maps and stores one stream's records."""

    def __init__(self, target: Target, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        assert isinstance(target, TargetHealth)
        self._target = target
        self._stream_validator = Validator(self.schema)
        self._mapper = mappers().get(self.stream_name)
        self._pending: list[Mapped] = []
        self._invalid: list[Invalid] = []

    @property
    def max_size(self) -> int:
        return int(self.config.get("batch_size") or 5000)

    def get_validator(self) -> None:
        return None  # validation happens in process_record, with quarantine instead of errors

    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        return record  # no SDK validation or timestamp parsing: see process_record

    def _remove_sdc_metadata_from_schema(self) -> None:
        kept = self.schema.get("properties", {}).get("_sdc_deleted_at")
        super()._remove_sdc_metadata_from_schema()
        if kept is not None:
            self.schema["properties"]["_sdc_deleted_at"] = kept

    def _remove_sdc_metadata_from_record(self, record: dict[str, Any]) -> None:
        # The SDK drops every _sdc_ column, _sdc_deleted_at included: that is how tap-crm says
        # a record was archived, deleted or merged away, so it is kept (mapping reads it).
        deleted_at = record.get("_sdc_deleted_at")
        super()._remove_sdc_metadata_from_record(record)
        if deleted_at is not None:
            record["_sdc_deleted_at"] = deleted_at

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        return None  # missing keys are quarantined in process_record, not fatal

    def _record_key(self, record: Mapping[str, Any]) -> str | None:
        keys = self.key_properties or []
        if any(record.get(k) is None for k in keys):
            return None
        return ":".join(str(record[k]) for k in keys) if keys else ""

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        stats = self._target.stats
        stream = self.stream_name
        stats.received[stream] += 1
        key = self._record_key(record)
        if key is None:
            missing = [k for k in self.key_properties or [] if record.get(k) is None]
            self._reject(stream, "", [("/" + missing[0], "required: key property missing")])
            return
        if not self._stream_validator.is_valid(record):
            self._reject(stream, key, self._stream_validator.explain(record))
            return
        if self._mapper is None:
            stats.unmapped[stream] += 1
            return
        try:
            mapped = self._mapper(record)
        except (KeyError, TypeError, ValueError) as exc:
            self._reject(stream, key, [("", f"mapping: {type(exc).__name__}")])
            return
        for item in mapped:
            if isinstance(item, Row):
                validator = canonical_validator(item.entity)
                if not validator.is_valid(item.data):
                    problems = [(f"/{item.entity}{p}", r) for p, r in validator.explain(item.data)]
                    self._reject(stream, key, problems)
                    return
        self._pending.extend(mapped)
        stats.stored[stream] += 1

    def _reject(self, stream: str, key: str, problems: Sequence[tuple[str, str]]) -> None:
        self._target.stats.quarantined[stream] += 1
        for pointer, reason in problems[:5]:
            self._invalid.append(Invalid(stream, key, pointer, reason))
        log.warning(
            "%s %s quarantined: %s", stream, key or "(no key)", "; ".join(p for p, _ in problems)
        )

    def process_batch(self, context: dict[str, Any]) -> None:
        pending, self._pending = self._pending, []
        invalid, self._invalid = self._invalid, []
        store = self._target.store
        store.write(pending)
        store.quarantine(invalid, self._target.run_id)


class TargetHealth(Target):
    """Validates tap-crm's streams, maps them to one canonical model and keeps it in a store."""

    name = "target-health"
    package_name = "crm-health-sync"
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)  # singer-sdk adds its built-in settings to it
    default_sink_class = HealthSink
    message_reader_class = OrjsonReader

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_id = uuid.uuid4().hex[:12]
        self.stats = RunStats()
        self._store: Store | None = None
        self._store_lock = threading.Lock()  # sinks drain in parallel threads
        try:
            self.max_invalid_share = float(self.config.get("max_invalid_share", 0.01))
        except ValueError:
            raise TargetConfigError("max_invalid_share must be a number, e.g. 0.01") from None
        try:
            self.scoring = parse_settings(self.config.get("scoring") or {})
        except ModelError as exc:
            raise TargetConfigError(f"scoring.{exc}") from None
        # The CRM credentials (write-back) are masked in every log line, as in tap-crm.
        redact_in_logs(
            str(self.config[name])
            for name, spec in CONFIG_SCHEMA["properties"].items()
            if spec.get("secret") and self.config.get(name)
        )
        try:
            self.governance = wb.Governance.from_settings(self.config.get("writeback"))
        except ValueError as exc:
            raise TargetConfigError(str(exc)) from None
        given = self.config.get("as_of")
        self.as_of = (
            dt.date.fromisoformat(given) if given else dt.datetime.now(dt.timezone.utc).date()
        )

    @property
    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                store = open_store(str(self.config.get("database_url") or DEFAULT_URL))
                store.start_run(self.run_id, _now())
                self._store = store
            return self._store

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if self.config.get("usage_csv"):
            self.load_usage_csv(str(self.config["usage_csv"]))
        stats = self.stats
        share = stats.invalid_share
        limit = self.max_invalid_share
        status = "failed" if share > limit else "succeeded"
        summary = stats.as_dict()
        busy: StoreBusy | None = None
        if status == "succeeded":
            measured = self.measure()
            if measured is not None:
                # what write-back plans from: the latest run's measurement
                summary["measured"] = {
                    "as_of": str(measured.as_of),
                    "model_version": measured.model_version,
                    "accounts": measured.accounts,
                }
            writeback = self.config.get("writeback") or {}
            if measured is not None and writeback.get("enabled"):
                try:
                    summary["writeback"] = write_back(
                        self.store,
                        self.config,
                        self.governance,
                        measurement=(str(measured.as_of), measured.model_version),
                        dry_run=bool(writeback.get("dry_run")),
                        label=f"target-health run {self.run_id}",
                    )
                except StoreBusy as exc:  # stored and measured; the next run writes back
                    summary["writeback"] = {"error": str(exc)}
                    busy = exc
        self.store.finish_run(self.run_id, _now(), status, summary)
        log.info(
            "run %s %s: %d received, %d stored, %d quarantined (%.2f%%)",
            self.run_id,
            status,
            summary["received"],
            summary["stored"],
            summary["quarantined"],
            share * 100,
        )
        if busy is not None:
            raise busy
        if status == "failed":
            raise InvalidShareExceeded(
                f"{share:.2%} of the records were invalid, above max_invalid_share"
                f" {limit:.2%}: see the quarantine table (run {self.run_id})"
            )

    def measure(self) -> ComputeSummary | None:
        """Scores, NPS, retention and segments as of ``as_of``, unless the model's latest
        snapshot is more recent than ``measure_every_days`` (and not on the same day)."""
        every = int(self.config.get("measure_every_days") or 1)
        version = self.scoring.health.version
        latest = self.store.query(
            "SELECT MAX(as_of) FROM scores WHERE model_version = {p}", (version,)
        )[0][0]
        if latest and latest != str(self.as_of):
            age = (self.as_of - dt.date.fromisoformat(str(latest))).days
            if 0 <= age < every:
                log.info("scores of %s are %d day(s) old: not measured again", latest, age)
                return None
        summary = compute(self.store, self.scoring, self.as_of)
        log.info(
            "measured %d accounts as of %s (model %s): bands %s; NPS %s from %d responses",
            summary.accounts,
            summary.as_of,
            summary.model_version,
            dict(sorted(summary.bands.items())),
            summary.nps.get("nps"),
            summary.nps.get("responses", 0),
        )
        return summary

    def load_usage_csv(self, path: str) -> None:
        """The usage file, validated and stored like a stream named ``usage``."""
        stream = "usage"
        validator = canonical_validator("usage")
        mapped: list[Mapped] = []
        invalid: list[Invalid] = []
        try:
            handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TargetConfigError(f"usage_csv: cannot read {path} ({exc.strerror})") from None
        with handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                self.stats.received[stream] += 1
                rows = mappers()[stream](row)
                data = rows[0].data if isinstance(rows[0], Row) else {}
                if not validator.is_valid(data):
                    self.stats.quarantined[stream] += 1
                    invalid.extend(
                        Invalid(stream, f"line {line}", f"/usage{p}", r)
                        for p, r in validator.explain(data)[:5]
                    )
                    continue
                self.stats.stored[stream] += 1
                mapped.extend(rows)
                if len(mapped) >= 5000:
                    self.store.write(mapped)
                    mapped = []
        self.store.write(mapped)
        self.store.quarantine(invalid, self.run_id)


class InvalidShareExceeded(Exception):
    """Too many invalid records: the run stops before anything uses the store."""


class TargetConfigError(Exception):
    """A setting is wrong; the message names it."""


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in cli.COMMANDS:
        sys.exit(cli.main(sys.argv[1:]))
    try:
        TargetHealth.cli()
    except (InvalidShareExceeded, TargetConfigError, StoreBusy) as exc:
        log.error("target-health: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
