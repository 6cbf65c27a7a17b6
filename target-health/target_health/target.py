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
import re
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from singer_sdk import typing as th
from singer_sdk.exceptions import MappingError
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target

from crm_connectors import registry, roles
from crm_connectors import settings as crm_settings
from crm_connectors.errors import ConfigError
from crm_connectors.http import quiet_request_logs
from crm_connectors.pii import redact_in_logs
from crm_connectors.settings import setting
from crm_connectors.timefmt import iso_to_ms

from . import cli, exits
from .compute import ComputeSummary, compute
from .erasure import purge_deleted_contacts
from .mapping import Mapped, Parent, Row, mapper_for, unmapped, usage
from .reader import OrjsonReader
from .runlock import StoreBusy, exclusive, wait_seconds
from .scoring import ModelError, parse_settings
from .store import DEFAULT_URL, Invalid, Store, StoreVersionError, open_store, store_url
from .validate import TimeBounds, Validator, canonical_validator
from .writeback import plan as wb
from .writeback.run import write_back

log = logging.getLogger("target_health")

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "database_url",
        th.StringType,
        default=DEFAULT_URL,
        secret=True,  # a PostgreSQL URL may hold a password
        description=(
            "Where the canonical store lives: sqlite:///<path> (default output/health.sqlite in "
            "the project) or postgresql://user:password@host:port/db."
        ),
    ),
    th.Property(
        "database_schema",
        th.StringType,
        description=(
            "The PostgreSQL schema that holds the store's tables (created when missing), so that"
            " several stores (a portal or org each, a test and a live one) share one database."
            " Default: the server's search path."
        ),
    ),
    th.Property(
        "max_invalid_share",
        th.NumberType,  # or its text, as Meltano passes it (crm_connectors.settings.read_numbers)
        default=0.01,
        description=(
            "Fail the run (after storing the valid records, before any scoring or write-back) "
            "when more than this share of the records received is invalid. 1 never fails."
        ),
    ),
    th.Property(
        "earliest_time",
        th.DateType,
        default="1970-01-01",
        description=(
            "A record with a date or date-time before this day is quarantined (an unparseable "
            "one too): such times are typing errors or placeholders."
        ),
    ),
    th.Property(
        "max_future_days",
        th.IntegerType,
        default=3660,
        description=(
            "A record with a date or date-time more than this many days after the run is "
            "quarantined (9999-12-31 placeholders)."
        ),
    ),
    th.Property(
        "max_clock_skew_minutes",
        th.IntegerType,
        default=60,
        description=(
            "A record last modified more than this many minutes after the run's clock is "
            "quarantined: stored, it would hide the record's real updates until that time."
        ),
    ),
    th.Property(
        "deleted_contact_retention_days",
        th.IntegerType,
        default=30,
        description=(
            "A contact deleted in its CRM is erased from the store (its row, the links to it and "
            "its quarantine entries: docs/PRIVACY.md) this many days after its last modification "
            "there. 0 erases it at the end of the run that sees the deletion."
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
        description=(
            "Records per stream per store transaction. When one stream's batch is full, every"
            " stream's pending records are stored and the STATE covering them is forwarded."
        ),
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
                "held_is_success",
                th.BooleanType,
                default=False,
                description=(
                    "Exit 0, not 3, when the brake holds a run's write-back or records await "
                    "approval."
                ),
            ),
            th.Property(
                "lock_wait_seconds",
                th.NumberType,
                default=600,
                description=(
                    "How long a run waits for another run's measurement or write-back on this "
                    "store (also with write-back off)."
                ),
            ),
            additional_properties=False,
        ),
        description=(
            "Write scores back into the CRMs at the end of each run: enabled (default false), "
            "dry_run (plan only), the blast-radius brake (max_band_change_share of the scored "
            "accounts changing band, or the mean score moving more than max_mean_score_shift "
            "points, from min_accounts up), the approval gate (approval_arr, "
            "approval_accounts), per-field ownership (overwrite, fill_if_empty, "
            "skip_if_edited), retention programs, and lock_wait_seconds (one measurement and "
            "write-back at a time per store: how long a run waits for another's). The CRM "
            "credentials are the connectors' settings, the same as tap-crm's."
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
    """Counts of one run, per stream: each record received is stored, quarantined or ignored."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self.ignored: dict[str, Counter[str]] = {}  # stream -> reason -> records
        #: stream -> the roles its schema marks no field for (mapping.unmapped)
        self.unmapped_roles: dict[str, list[str]] = {}

    def ignore(self, stream: str, reason: str) -> None:
        self.ignored.setdefault(stream, Counter())[reason] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": sum(self.received.values()),
            "stored": sum(self.stored.values()),
            "quarantined": sum(self.quarantined.values()),
            "ignored": sum(sum(c.values()) for c in self.ignored.values()),
            "unmapped_streams": sorted(
                s for s, reasons in self.ignored.items() if UNMAPPED in reasons
            ),
            "unmapped_roles": {
                s: missing for s, missing in sorted(self.unmapped_roles.items()) if self.received[s]
            },
            "streams": {
                s: {
                    "received": n,
                    "stored": self.stored[s],
                    "quarantined": self.quarantined[s],
                    "ignored": dict(sorted(self.ignored.get(s, Counter()).items())),
                }
                for s, n in sorted(self.received.items())
            },
        }

    @property
    def invalid_share(self) -> float:
        total = sum(self.received.values())
        return sum(self.quarantined.values()) / total if total else 0.0


#: Why a record was ignored: its stream has no mapping; its mapping keeps nothing of it (a
#: survey that is not NPS, a ticket that is a task, an association between two non-accounts).
UNMAPPED = "no mapping for this stream"
NOT_CANONICAL = "not a canonical record"
#: Characters no key may hold (PostgreSQL text cannot store NUL; the others are no identifier).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The columns of a canonical row that are keys or links.
_KEY_FIELDS = ("key", "crm", "account_ref", "contact_ref", "email_token")


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x00``), safe in any store or log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class HealthSink(BatchSink):
    """Validates, maps and stores one stream's records."""

    def __init__(self, target: Target, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        assert isinstance(target, TargetHealth)
        self._target = target
        self._stream_validator = Validator(self.schema, target.bounds)
        self._mapper = mapper_for(self.stream_name, self.schema)
        if missing := unmapped(self.stream_name, self.schema):
            target.stats.unmapped_roles[self.stream_name] = missing
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

    def _key_problem(self, record: Mapping[str, Any]) -> tuple[str, str] | None:
        """(pointer, reason) when a key property is missing, empty or not an identifier."""
        for name in self.key_properties or []:
            value = record.get(name)
            if value is None:
                return "/" + name, "required: key property missing"
            text = str(value)
            if not text.strip():
                return "/" + name, "key property empty"
            if _CONTROL.search(text):
                return "/" + name, "key property holds a control character"
        return None

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        target = self._target
        stats = target.stats
        stream = self.stream_name
        stats.received[stream] += 1
        keys = self.key_properties or []
        missing = any(record.get(k) is None for k in keys)
        key = "" if missing else ":".join(str(record[k]) for k in keys)
        problem = self._key_problem(record)
        if problem is not None:
            self._reject(stream, key, [problem])
            return
        if not self._stream_validator.is_valid(record):
            self._reject(stream, key, self._stream_validator.explain(record))
            return
        if self._mapper is None:
            stats.ignore(stream, UNMAPPED)
            return
        try:
            mapped = self._mapper(record)
        except (KeyError, TypeError, ValueError, ArithmeticError, OSError) as exc:
            # a value the mapping cannot take (OverflowError, OSError: a timestamp out of range)
            self._reject(stream, key, [("", f"mapping: {type(exc).__name__}")])
            return
        if not mapped:
            stats.ignore(stream, NOT_CANONICAL)
            return
        for item in mapped:
            problems = target.check_mapped(item)
            if problems:
                self._reject(stream, key, problems)
                return
        self._pending.extend(mapped)
        stats.stored[stream] += 1

    def _reject(self, stream: str, key: str, problems: Sequence[tuple[str, str]]) -> None:
        self._target.stats.quarantined[stream] += 1
        stream, key = _printable(stream), _printable(key)
        for pointer, reason in problems[:5]:
            self._invalid.append(Invalid(stream, key, _printable(pointer), reason))
        log.warning(
            "%s %s quarantined: %s",
            stream,
            key or "(no key)",
            "; ".join(_printable(p) for p, _ in problems),
        )

    def process_batch(self, context: dict[str, Any]) -> None:
        if self.is_full:  # drained alone by the SDK: the others follow, then STATE (see below)
            self._target.full_sink_drained = True
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
        self.max_invalid_share = float(self.config.get("max_invalid_share", 0.01))
        try:
            self.scoring = parse_settings(self.config.get("scoring") or {})
        except ModelError as exc:
            raise TargetConfigError(f"scoring.{exc}") from None
        # The CRM credentials (write-back) are masked in every log line, as in tap-crm; of the
        # store's URL, its password (the rest names the store, which messages may need to say).
        quiet_request_logs(log.getEffectiveLevel())
        redact_in_logs(
            _secret_part(name, str(self.config[name]))
            for name, spec in CONFIG_SCHEMA["properties"].items()
            if spec.get("secret") and self.config.get(name)
        )
        try:
            self.governance = wb.Governance.from_settings(self.config.get("writeback"))
        except ValueError as exc:
            raise TargetConfigError(str(exc)) from None
        try:
            self.store_url = store_url(self.config)
        except ValueError as exc:
            raise TargetConfigError(str(exc)) from None
        now = dt.datetime.now(dt.timezone.utc)
        self.as_of = self._date("as_of") or now.date()
        self.bounds = TimeBounds.around(
            now,
            self._date("earliest_time") or dt.date(1970, 1, 1),
            int(self.config.get("max_future_days") or 3660),
        )
        skew = dt.timedelta(minutes=int(self.config.get("max_clock_skew_minutes") or 60))
        self.modified_limit_ms = iso_to_ms((now + skew).isoformat())

    def _date(self, name: str) -> dt.date | None:
        """The date setting ``name`` (YYYY-MM-DD), None if unset."""
        given = self.config.get(name)
        try:
            return dt.date.fromisoformat(str(given)) if given else None
        except ValueError:
            raise TargetConfigError(f"{name} must be a date, YYYY-MM-DD") from None

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # singer-sdk's check as one line naming the setting (crm_connectors.settings.check)
        # and never quoting a value, in every mode; then the SDK's, which fills the defaults.
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        crm_settings.read_numbers(self._config, schema)
        crm_settings.check(self._config, schema)
        return super()._validate_config(raise_errors=raise_errors)

    #: Set when a sink drained because it was full (HealthSink.process_batch).
    full_sink_drained = False

    def _handle_max_record_age(self) -> None:
        # singer-sdk forwards STATE only when it drains every sink: every five minutes and at
        # the end, not when one sink is full and drains alone. Draining them all then (and so
        # forwarding the STATE they cover) bounds what a killed pipeline re-reads to one batch
        # per stream, as the README says.
        if self.full_sink_drained:
            self.full_sink_drained = False
            self.drain_all()
            return
        super()._handle_max_record_age()

    def check_mapped(self, item: Mapped) -> list[tuple[str, str]]:
        """What is wrong with a mapped row or parent: (pointer, reason) pairs, none if valid."""
        if isinstance(item, Parent):
            for name in ("child", "account_ref"):
                if _CONTROL.search(getattr(item, name)) or not getattr(item, name).strip():
                    return [(f"/parent/{name}", "not an identifier")]
            return []
        entity, data = item.entity, item.data
        validator = canonical_validator(entity, self.bounds)
        if not validator.is_valid(data):
            return [(f"/{entity}{p}", r) for p, r in validator.explain(data)]
        for name in _KEY_FIELDS:
            value = data.get(name)
            if isinstance(value, str) and (_CONTROL.search(value) or not value.strip()):
                return [(f"/{entity}/{name}", "not an identifier")]
        modified = data.get("modified")  # a date-time within the bounds (the schema's check)
        if isinstance(modified, str) and iso_to_ms(modified) > self.modified_limit_ms:
            return [(f"/{entity}/modified", "last modified after the run's clock")]
        return []

    @property
    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                store = open_store(self.store_url)
                store.start_run(self.run_id, _now())
                self._store = store
            return self._store

    def process_endofpipe(self) -> None:
        super().process_endofpipe()  # drains: stores what was read, then forwards its STATE
        fault = self.message_reader.fault if isinstance(self.message_reader, OrjsonReader) else None
        if fault is None and self.config.get("usage_csv"):
            self.load_usage_csv(str(self.config["usage_csv"]))
        stats = self.stats
        share = stats.invalid_share
        limit = self.max_invalid_share
        summary = stats.as_dict()
        # why the run fails (None: it does not); nothing downstream of the store uses a failed
        # run's input, which may be partial
        failure = fault
        if failure is None and share > limit:
            failure = (
                f"{share:.2%} of the records were invalid, above max_invalid_share"
                f" {limit:.2%}: see the quarantine table (run {self.run_id})"
            )
        if fault is not None:
            summary["input_error"] = fault
        # a run that stored and measured has succeeded (write-back plans from its measurement)
        # even when its write-back then fails: the exit code says that; one that found the store
        # held by another run has not measured, and has failed
        if failure is None:
            code, failure = self._measure_and_write_back(summary)
            measured = failure is None or "measured" in summary
            status = "succeeded" if measured else "failed"
        else:
            code, status = exits.FAILED, "failed"
        self.store.finish_run(self.run_id, _now(), status, summary)
        log.info(
            "run %s %s: %d received, %d stored, %d quarantined (%.2f%%), %d ignored",
            self.run_id,
            status,
            summary["received"],
            summary["stored"],
            summary["quarantined"],
            share * 100,
            summary["ignored"],
        )
        for stream, missing in summary["unmapped_roles"].items():
            log.info(
                "%s: no field holds %s, so what they feed is missing from the scores (map"
                " them with tap-crm's %s)",
                stream,
                ", ".join(missing),
                roles.setting_name(stream.partition("_")[0]),
            )
        if failure is not None:
            raise exits.Exit(code, failure)

    def _measure_and_write_back(self, summary: dict[str, Any]) -> tuple[int, str | None]:
        """Measure and, when enabled, write back; the run's exit code and why it is not 0.

        The store's run lock is held from the purge of deleted contacts on, so two runs never
        erase or rewrite one snapshot at once and a plan is made from the scores of the run that
        holds the lock, never from a snapshot another run is rewriting meanwhile."""
        writeback = self.config.get("writeback") or {}
        try:
            with exclusive(
                self.store, f"target-health run {self.run_id}", wait_seconds(self.config)
            ):
                days = self.config.get("deleted_contact_retention_days")
                purged = purge_deleted_contacts(
                    self.store, 30 if days is None else int(days), dt.datetime.now(dt.timezone.utc)
                )
                summary["purged_contacts"] = purged.contacts
                measured = self.measure()
                if measured is None:
                    return exits.OK, None
                summary["measured"] = self._measured(measured)
                if not writeback.get("enabled"):
                    return exits.OK, None
                out = write_back(
                    self.store,
                    self.config,
                    self.governance,
                    measurement=(str(measured.as_of), measured.model_version),
                    dry_run=bool(writeback.get("dry_run")),
                    locked=True,
                )
        except StoreBusy as exc:  # stored; the next run measures (and writes back)
            summary["writeback" if writeback.get("enabled") else "measure"] = {"error": str(exc)}
            return exits.FAILED, str(exc)
        summary["writeback"] = out
        code = exits.of_writeback(out, self.config)
        if out.get("error"):
            return code, f"write-back: {out['error']}"
        if out.get("failed"):
            return code, (
                f"write-back: {len(out['failed'])} record(s) failed to write; the next run"
                f" plans them again (plan {out.get('plan_id')})"
            )
        if code == exits.ATTENTION:
            return code, (
                f"write-back plan {out.get('plan_id')} is held"
                f" ({out.get('reason') or 'records awaiting approval'}): review it with"
                f" target-health show {out.get('plan_id')}, then target-health"
                f" approve|reject {out.get('plan_id')}"
            )
        return code, None

    @staticmethod
    def _measured(measured: ComputeSummary) -> dict[str, Any]:
        """What write-back plans from: the latest run's measurement."""
        return {
            "as_of": str(measured.as_of),
            "model_version": measured.model_version,
            "accounts": measured.accounts,
        }

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
        validator = canonical_validator("usage", self.bounds)
        mapped: list[Mapped] = []
        invalid: list[Invalid] = []
        try:
            handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TargetConfigError(f"usage_csv: cannot read {path} ({exc.strerror})") from None
        with handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                self.stats.received[stream] += 1
                rows = usage(row)
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


def _secret_part(name: str, value: str) -> str:
    """What of secret setting ``name`` is the secret: all of it, but of ``database_url`` only
    its password ("" when it has none)."""
    if name != "database_url":
        return value
    try:
        return urlsplit(value).password or ""
    except ValueError:
        return value


class TargetConfigError(Exception):
    """A setting is wrong; the message names it."""


def main() -> None:
    if (argv := cli.command_argv(sys.argv[1:])) is not None:
        sys.exit(cli.main(argv))
    command = TargetHealth.cli  # once: each access sets the SDK's logging up again
    if problem := crm_settings.check_command_line(sys.argv[1:], command):
        log.error("target-health: %s", problem)
        sys.exit(exits.USAGE)
    try:
        command()
    except exits.Exit as exc:
        (log.warning if exc.code == exits.ATTENTION else log.error)("target-health: %s", exc)
        sys.exit(exc.code)
    except (TargetConfigError, ConfigError, StoreVersionError, MappingError) as exc:
        log.error("target-health: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        sys.exit(exits.USAGE)
    except psycopg.OperationalError as exc:
        code, line = exits.of_store_error(exc)
        log.error("target-health: %s", line)
        sys.exit(code)


if __name__ == "__main__":
    main()
