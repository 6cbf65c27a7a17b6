"""Where target-health keeps the canonical model: SQLite by default, PostgreSQL when given a URL.

One schema for both (plain SQL, JSON as text), so they give the same results:

``records``     one canonical row per source record, keyed ``(entity, key)``, with ``token``
                (a contact's keyed e-mail token, tok:v1:..., never the address) and
                ``account_ref``: for an account row its canonical account key (mapping.account_key),
                for the others their account's source key. Upserted: a replay
                (Singer delivers at least once) rewrites a row with the same data, and an older
                version arriving late (``modified`` earlier than the stored one, compared as
                epoch ms in ``modified_ms``, never as text) changes nothing.
                Deletes are rows with ``deleted = 1``: kept, so that scoring can see a churned
                account's history, and left out of counts.
``parents``     child source key -> the account record it belongs to (HubSpot associations).
``quarantine``  records that failed validation: stream, record key, JSON pointer, reason (never
                the value). Keyed so a replayed bad record is recorded once.
``scores``      per account, as-of date and model version: score, band, segment, trend, NPS,
                top factors and the signals behind them (the score history).
``metrics``     portfolio figures per as-of date: NPS overall, retention per period, bands.
``runs``        one row per target run with its counts.
``erased``      the contacts erased from the store (target_health.erasure), by a hash of their
                source key, with the account they belonged to: a write of one of them (a replay,
                or another run that read the CRM before the erasure) is dropped, and its
                tickets', conversations' and NPS responses' link to the person is cleared as the
                erasure cleared it (:meth:`Store.write`). ``through_ms``: versions modified up to
                then are erased (a purged deletion); NULL: every version (``forget``).
``run_locks``   who holds a store-wide lock (PostgreSQL; SQLite keeps it in the lock file).

Store-wide locks (:meth:`Store.try_lock`, used by target_health.runlock) are held by the
process, so a crash releases them: a PostgreSQL session advisory lock on its own connection, or
an OS file lock on ``<database>.<name>.lock`` beside the SQLite file.

URLs: ``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite``,
``postgresql://user@host:port/db`` (``postgres://`` too), in the schema its ``search_path``
option names (the ``database_schema`` setting: :func:`store_url`), whose locks are its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from crm_connectors.timefmt import iso_to_ms

from .mapping import Parent, Row, account_key

DEFAULT_URL = "sqlite:///output/health.sqlite"
#: Bound parameters per lookup by key (well under SQLite's and PostgreSQL's limits).
_KEYS_PER_QUERY = 1000

#: The version of the store's tables this target-health makes and reads (``store_meta``):
#: opening an older store migrates it (Store._migrate), a newer one is refused.
STORE_VERSION = 2


class StoreVersionError(Exception):
    """The store was made by a newer target-health; the message says what to do."""


_DDL = (
    """CREATE TABLE IF NOT EXISTS store_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        entity TEXT NOT NULL,
        key TEXT NOT NULL,
        crm TEXT NOT NULL,
        account_ref TEXT,
        contact_ref TEXT,
        token TEXT,
        deleted INTEGER NOT NULL,
        modified TEXT,
        data TEXT NOT NULL,
        modified_ms BIGINT,
        PRIMARY KEY (entity, key)
    )""",
    "CREATE INDEX IF NOT EXISTS records_account ON records (account_ref)",
    "CREATE INDEX IF NOT EXISTS records_token ON records (token)",
    """CREATE TABLE IF NOT EXISTS parents (
        child TEXT PRIMARY KEY,
        account_ref TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        stream TEXT NOT NULL,
        record_key TEXT NOT NULL,
        pointer TEXT NOT NULL,
        reason TEXT NOT NULL,
        first_run TEXT NOT NULL,
        PRIMARY KEY (stream, record_key, pointer)
    )""",
    """CREATE TABLE IF NOT EXISTS scores (
        account_key TEXT NOT NULL,
        as_of TEXT NOT NULL,
        model_version TEXT NOT NULL,
        score DOUBLE PRECISION,
        band TEXT,
        segment TEXT NOT NULL,
        trend DOUBLE PRECISION,
        nps DOUBLE PRECISION,
        nps_responses INTEGER NOT NULL,
        churned_on TEXT,
        factors TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (account_key, as_of, model_version)
    )""",
    """CREATE TABLE IF NOT EXISTS metrics (
        as_of TEXT NOT NULL,
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        model_version TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (as_of, name, label, model_version)
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        counts TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS run_locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS erased (
        digest TEXT PRIMARY KEY,
        account_ref TEXT,
        through_ms BIGINT,
        erased_at TEXT NOT NULL
    )""",
)
#: Released by its holder: the store-wide lock it took (Store.try_lock).
Release = Callable[[], None]

_UPSERT = (
    "INSERT INTO records"
    " (entity, key, crm, account_ref, contact_ref, token, deleted, modified, data, modified_ms)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (entity, key) DO UPDATE SET crm = excluded.crm,"
    " account_ref = excluded.account_ref, contact_ref = excluded.contact_ref,"
    " token = excluded.token,"
    " deleted = excluded.deleted, modified = excluded.modified, data = excluded.data,"
    " modified_ms = excluded.modified_ms"
    " WHERE records.modified_ms IS NULL OR excluded.modified_ms IS NULL"
    " OR excluded.modified_ms >= records.modified_ms"
)
_PARENT = (
    "INSERT INTO parents (child, account_ref) VALUES ({p}, {p})"
    " ON CONFLICT (child) DO UPDATE SET account_ref = excluded.account_ref"
)
_UNPARENT = "DELETE FROM parents WHERE child = {p} AND account_ref = {p}"
_SCORE = (
    "INSERT INTO scores (account_key, as_of, model_version, score, band, segment, trend, nps,"
    " nps_responses, churned_on, factors, detail)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (account_key, as_of, model_version) DO UPDATE SET score = excluded.score,"
    " band = excluded.band, segment = excluded.segment, trend = excluded.trend,"
    " nps = excluded.nps, nps_responses = excluded.nps_responses,"
    " churned_on = excluded.churned_on, factors = excluded.factors, detail = excluded.detail"
)
_METRIC = (
    "INSERT INTO metrics (as_of, name, label, model_version, value)"
    " VALUES ({p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (as_of, name, label, model_version) DO UPDATE SET value = excluded.value"
)
_QUARANTINE = (
    "INSERT INTO quarantine (stream, record_key, pointer, reason, first_run)"
    " VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (stream, record_key, pointer) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Invalid:
    """One validation failure, safe to store: no value, only where and why."""

    stream: str
    record_key: str
    pointer: str
    reason: str


def to_json(value: Any) -> str:
    """The one JSON text the store keeps of a value (so equal values are equal texts)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def erased_digest(key: str) -> str:
    """How ``erased`` names an erased record: a hash of its source key, never the key."""
    return hashlib.blake2b(f"target-health/erased/{key}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Erased:
    """An ``erased`` entry: the account the person belonged to, and up to which modification
    (epoch ms; None: every version) their contact record is erased."""

    account_ref: str | None
    through_ms: int | None

    def covers(self, modified_ms: int | None) -> bool:
        return self.through_ms is None or modified_ms is None or modified_ms <= self.through_ms


class _Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


class Store:
    """The canonical store over one DB-API connection (SQLite or PostgreSQL)."""

    placeholder = "?"

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn = self._connect()
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        """The store's tables made, or migrated to this version, under the DDL lock."""
        with self.transaction() as tx:
            self._serialise_ddl(tx)
            found = self._version(tx)
            if found > STORE_VERSION:
                raise StoreVersionError(
                    f"the store at database_url is version {found}, made by a newer"
                    f" target-health (this one knows versions up to {STORE_VERSION}): upgrade"
                    " target-health, or give database_url another store"
                )
            for ddl in _DDL:
                tx.execute(ddl)
            if found < STORE_VERSION:
                self._migrate(tx)
                tx.execute(
                    self.sql(
                        "INSERT INTO store_meta (name, value) VALUES ('version', {p})"
                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                    ),
                    (str(STORE_VERSION),),
                )

    def _version(self, tx: Any) -> int:
        """The version of the store's tables: 0 for none yet, 1 for a store made before
        versions were recorded (its ``records`` table is all it has of them)."""
        if self._has_table(tx, "store_meta"):
            tx.execute("SELECT value FROM store_meta WHERE name = 'version'")
            row = tx.fetchone()
            if row:
                return int(row[0])
        return 1 if self._has_table(tx, "records") else 0

    def _has_table(self, tx: Any, name: str) -> bool:
        raise NotImplementedError

    def _migrate(self, tx: Any) -> None:
        """Bring a store made by an earlier version up to :data:`STORE_VERSION` (each step
        idempotent). 2: ``records.modified_ms``; rows stored before it have none, and their
        next version replaces them, whatever text they hold as ``modified``."""
        raise NotImplementedError

    # -- connection -----------------------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def atomic(self, work: Callable[[Any], None], tries: int = 5) -> None:
        """``work(cursor)`` in one transaction, run again (after a short random pause) when the
        database broke it off to resolve a deadlock or a serialisation conflict with another
        run: its writes are idempotent upserts, so a retry is safe (PostgreSQL)."""
        for attempt in range(1, tries + 1):
            try:
                with self.transaction() as tx:
                    work(tx)
                return
            except Exception as exc:
                if attempt == tries or not self._conflict(exc):
                    raise
                time.sleep(random.uniform(0.05, 0.25) * attempt)

    def _conflict(self, exc: Exception) -> bool:
        """Whether ``exc`` is a transaction the database aborted because of another's."""
        return False

    def _serialise_ddl(self, tx: Any) -> None:
        """Make concurrent table creation safe (one store opening at a time creates)."""

    def try_lock(self, name: str, holder: str) -> Release | None:
        """Take the store-wide lock ``name`` if no process holds it, recording ``holder`` (a
        line saying who): its release, or None when it is held."""
        raise NotImplementedError

    def lock_holder(self, name: str) -> str | None:
        """What the holder of lock ``name`` recorded (None: not known)."""
        raise NotImplementedError

    def sql(self, template: str) -> str:
        """``template`` with ``{p}`` as this backend's parameter placeholder."""
        return template.format(p=self.placeholder)

    def close(self) -> None:
        self._conn.close()

    # -- writes ---------------------------------------------------------------------------------

    def write(self, mapped: Iterable[Row | Parent]) -> int:
        """Upsert rows and parents in one transaction; returns the rows written."""
        rows: list[tuple[Any, ...]] = []
        links: list[tuple[bool, str, str]] = []  # (unlinked, child, account_ref)
        for item in mapped:
            if isinstance(item, Parent):
                links.append((item.deleted, item.child, item.account_ref))
                continue
            d = item.data
            modified = d.get("modified")
            # An account row's account_ref is its canonical account (ext:/dom:/itself): the
            # link every other row reaches through its own account_ref.
            ref = (
                account_key(d.get("external_id"), d.get("domain"), d["key"])
                if item.entity == "account"
                else d.get("account_ref")
            )
            rows.append((
                item.entity,
                d["key"],
                d["crm"],
                ref,
                d.get("contact_ref"),
                d.get("email_token"),  # a contact's keyed e-mail token: links across CRMs
                1 if d.get("deleted") else 0,
                modified,
                to_json(d),
                iso_to_ms(modified) if modified else None,  # ValueError for a wrong one
            ))  # fmt: skip
        # Rows in key order, then links in child order (a child's own links in their given
        # order): every transaction takes its row locks in one global order, so runs writing
        # the same records at once wait for each other instead of deadlocking (PostgreSQL).
        rows.sort(key=lambda r: (r[0], r[1]))
        links.sort(key=lambda link: link[1])
        written = [0]

        def work(tx: Any) -> None:
            self.hold_erasures(tx)
            kept, kept_links = self._suppress_erased(tx, rows, links)
            if kept:
                tx.executemany(self.sql(_UPSERT), kept)
            for unlinked, run in itertools.groupby(kept_links, key=lambda link: link[0]):
                tx.executemany(
                    self.sql(_UNPARENT if unlinked else _PARENT), [link[1:] for link in run]
                )
            written[0] = len(kept)

        self.atomic(work)
        return written[0]

    def _suppress_erased(
        self, tx: Any, rows: list[tuple[Any, ...]], links: list[tuple[bool, str, str]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[bool, str, str]]]:
        """``rows`` and ``links`` without what an erasure removed: an erased contact's rows
        (a later version of a purged deletion is the contact restored in its CRM: it is kept,
        and lifts the entry) and its associations; the link of other rows to an erased
        contact is cleared, their account kept as erase() keeps it."""
        tx.execute("SELECT 1 FROM erased LIMIT 1")
        if tx.fetchone() is None:  # the common case: nothing was ever erased
            return rows, links
        probe = {r[1] for r in rows if r[0] == "contact"} | {r[4] for r in rows if r[4]}
        erased = self._erased(tx, probe | {link[1] for link in links})
        if not erased:
            return rows, links
        kept: list[tuple[Any, ...]] = []
        lifted: set[str] = set()
        for row in rows:
            entry = erased.get(row[1]) if row[0] == "contact" else None
            if entry is None:
                kept.append(row)
            elif not entry.covers(row[9]):
                kept.append(row)
                lifted.add(row[1])
        for key in sorted(lifted):
            tx.execute(self.sql("DELETE FROM erased WHERE digest = {p}"), (erased_digest(key),))
            del erased[key]
        links = [link for link in links if link[1] not in erased]
        orphans = [r for r in kept if r[4] in erased and r[3] is None]
        parented = {link[1] for link in links if not link[0]} | self._children(
            tx, [r[1] for r in orphans]
        )
        for i, row in enumerate(kept):
            entry = erased.get(row[4]) if row[4] else None
            if entry is None:
                continue
            doc = json.loads(row[8])
            doc["contact_ref"] = None
            ref = row[3]
            if ref is None and row[1] not in parented and entry.account_ref is not None:
                ref = doc["account_ref"] = entry.account_ref
            kept[i] = (*row[:3], ref, None, *row[5:8], to_json(doc), row[9])
        return kept, links

    def _erased(self, tx: Any, keys: Iterable[str]) -> dict[str, Erased]:
        """The ``erased`` entries of ``keys``, by key."""
        digests = {erased_digest(k): k for k in keys}
        found: dict[str, Erased] = {}
        for chunk, marks in _chunks(sorted(digests)):
            tx.execute(
                self.sql(
                    f"SELECT digest, account_ref, through_ms FROM erased WHERE digest IN ({marks})"
                ),
                chunk,
            )
            for digest, account, through in tx.fetchall():
                found[digests[digest]] = Erased(account, through)
        return found

    def _children(self, tx: Any, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have an association (``parents``) in the store."""
        found: set[str] = set()
        for chunk, marks in _chunks(keys):
            tx.execute(self.sql(f"SELECT child FROM parents WHERE child IN ({marks})"), chunk)
            found |= {str(c) for (c,) in tx.fetchall()}
        return found

    def hold_erasures(self, tx: Any, exclusive: bool = False) -> None:
        """Order this transaction with erasures: writes share the hold, an erasure takes it
        alone, so a write sees an erasure either whole or not yet begun, never half done."""
        raise NotImplementedError

    def quarantine(self, invalid: Iterable[Invalid], run_id: str) -> None:
        params = [(i.stream, i.record_key, i.pointer, i.reason, run_id) for i in invalid]
        params.sort(key=lambda r: tuple(map(str, r[:3])))  # in key order, as write()
        if not params:
            return

        def work(tx: Any) -> None:
            self.hold_erasures(tx)
            # an erased contact's record key is not recorded again
            erased = self._erased(tx, {_source_key(str(r[0]), str(r[1])) for r in params})
            kept = [r for r in params if _source_key(str(r[0]), str(r[1])) not in erased]
            if kept:
                tx.executemany(self.sql(_QUARANTINE), kept)

        self.atomic(work)

    def write_scores(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert score snapshots: (account_key, as_of, model_version, score, band, segment,
        trend, nps, nps_responses, churned_on, factors, detail); JSON columns as values."""
        params = [(*r[:10], to_json(r[10]), to_json(r[11])) for r in rows]
        params.sort(key=lambda r: tuple(map(str, r[:3])))  # in key order, as write()
        if params:
            self.atomic(lambda tx: tx.executemany(self.sql(_SCORE), params))

    def write_metrics(self, rows: Sequence[tuple[str, str, str, str, Any]]) -> None:
        """Upsert portfolio metrics: (as_of, name, label, model_version, value as JSON)."""
        params = [(*r[:4], to_json(r[4])) for r in rows]
        params.sort(key=lambda r: tuple(map(str, r[:4])))  # in key order, as write()
        if params:
            self.atomic(lambda tx: tx.executemany(self.sql(_METRIC), params))

    def score_history(
        self, model_version: str, before: str, accounts: Sequence[str] | None = None
    ) -> dict[str, list[tuple[str, float | None, str | None]]]:
        """Earlier snapshots of one model, per account: (as_of, score, band), oldest first. Of
        every account, or only of ``accounts`` (looked up by key, so that a caller going through
        the accounts a batch at a time holds one batch's history, not everyone's)."""
        sql = (
            "SELECT account_key, as_of, score, band FROM scores"
            " WHERE model_version = {p} AND as_of < {p}"
        )
        rows: Iterable[tuple[Any, ...]]
        if accounts is None:
            rows = self.stream(f"{sql} ORDER BY account_key, as_of", (model_version, before))
        else:
            found = []
            for chunk, marks in _chunks(accounts):
                found += self.query(
                    f"{sql} AND account_key IN ({marks}) ORDER BY account_key, as_of",
                    (model_version, before, *chunk),
                )
            rows = found
        out: dict[str, list[tuple[str, float | None, str | None]]] = {}
        for key, as_of, score, band in rows:
            out.setdefault(str(key), []).append((str(as_of), score, band))
        return out

    def start_run(self, run_id: str, started_at: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                self.sql(
                    "INSERT INTO runs (run_id, started_at, status, counts)"
                    " VALUES ({p}, {p}, 'running', '{{}}')"
                ),
                (run_id, started_at),
            )

    def finish_run(
        self, run_id: str, finished_at: str, status: str, counts: dict[str, Any]
    ) -> None:
        with self.transaction() as tx:
            tx.execute(
                self.sql(
                    "UPDATE runs SET finished_at = {p}, status = {p}, counts = {p}"
                    " WHERE run_id = {p}"
                ),
                (finished_at, status, to_json(counts), run_id),
            )

    # -- reads ----------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            tx.execute(self.sql(sql), params)
            return [tuple(r) for r in tx.fetchall()]

    def stream(
        self, sql: str, params: Sequence[Any] = (), size: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` a batch at a time (memory stays flat for any number of rows), on a
        connection of their own, so the caller may write to the store meanwhile."""
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(self.sql(sql), params)
            while batch := cur.fetchmany(size):
                yield from (tuple(r) for r in batch)
        finally:
            conn.close()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """The store's content, ordered: for replay and backend comparisons (runs excluded)."""
        return {
            "records": self.query(
                "SELECT entity, key, crm, account_ref, contact_ref, token, deleted, modified, data"
                " FROM records ORDER BY entity, key"
            ),
            "parents": self.query("SELECT child, account_ref FROM parents ORDER BY child"),
            "quarantine": self.query(
                "SELECT stream, record_key, pointer, reason FROM quarantine"
                " ORDER BY stream, record_key, pointer"
            ),
            "scores": self.query("SELECT * FROM scores ORDER BY account_key, as_of, model_version"),
            "metrics": self.query(
                "SELECT * FROM metrics ORDER BY as_of, name, label, model_version"
            ),
        }

    def account_names(self, keys: Iterable[str]) -> dict[str, str]:
        """Account key -> the account's name, for those of ``keys`` the store holds with one."""
        found: dict[str, str] = {}
        with self.transaction() as tx:
            for chunk, marks in _chunks(sorted(set(keys))):
                tx.execute(
                    self.sql(
                        "SELECT key, data FROM records"
                        f" WHERE entity = 'account' AND key IN ({marks})"
                    ),
                    chunk,
                )
                for key, data in tx.fetchall():
                    name = json.loads(data).get("name")
                    if isinstance(name, str) and name.strip():
                        found[str(key)] = name
        return found

    def counts(self) -> dict[str, int]:
        return {
            str(entity): int(n)
            for entity, n in self.query(
                "SELECT entity, COUNT(*) FROM records WHERE deleted = 0 GROUP BY entity"
            )
        }


class SqliteStore(Store):
    placeholder = "?"

    def _has_table(self, tx: Any, name: str) -> bool:
        tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return tx.fetchone() is not None

    def _migrate(self, tx: Any) -> None:
        columns = {row[1] for row in tx.execute("PRAGMA table_info(records)").fetchall()}
        if "modified_ms" not in columns:
            tx.execute("ALTER TABLE records ADD COLUMN modified_ms BIGINT")

    def _connect(self) -> sqlite3.Connection:
        path = self.url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def hold_erasures(self, tx: Any, exclusive: bool = False) -> None:
        # SQLite has one writer at a time: taking the write lock now (not at the first write)
        # makes what this transaction reads before it writes part of it
        if not self._conn.in_transaction:
            tx.execute("BEGIN IMMEDIATE")

    def _conflict(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _lock_path(self, name: str) -> Path | None:
        path = self.url.removeprefix("sqlite:///")
        return None if path == ":memory:" else Path(f"{path}.{name}.lock")

    def try_lock(self, name: str, holder: str) -> Release | None:
        path = self._lock_path(name)
        if path is None:  # an in-memory store is this process's alone
            return lambda: None
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _flock(fd):
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, holder.encode())

        def release() -> None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the OS lock

        return release

    def lock_holder(self, name: str) -> str | None:
        path = self._lock_path(name)
        try:
            text = path.read_text().strip() if path else ""
        except OSError:
            return None
        return text or None


def _flock(fd: int) -> bool:
    """An exclusive OS lock on ``fd`` without waiting; False when another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class PostgresStore(Store):
    placeholder = "%s"

    def _connect(self) -> Any:
        return psycopg.connect(self._dsn)

    @property
    def _dsn(self) -> str:
        return self.url.replace("postgres://", "postgresql://", 1)

    def _conflict(self, exc: Exception) -> bool:
        return isinstance(
            exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure
        )

    @property
    def schema(self) -> str:
        """The schema the URL's ``search_path`` option names ("" for the server's default)."""
        options = psycopg.conninfo.conninfo_to_dict(self._dsn).get("options") or ""
        found = re.search(r"-c\s*search_path\s*=\s*([\w$]+)", str(options))
        return found.group(1) if found else ""

    def _key(self, name: str) -> int:
        """The advisory lock key of ``name`` in this store (its schema's own: stores in two
        schemas of one database do not wait on each other)."""
        return _advisory_key(f"{self.schema}/{name}" if self.schema else name)

    def _serialise_ddl(self, tx: Any) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(%s)", (self._key("ddl"),))
        if self.schema:
            tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    def hold_erasures(self, tx: Any, exclusive: bool = False) -> None:
        take = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        tx.execute(f"SELECT {take}(%s)", (self._key("erasure"),))

    def _has_table(self, tx: Any, name: str) -> bool:
        # in the schema the search path names first (the store's own)
        tx.execute("SELECT to_regclass(%s)", (name,))
        row = tx.fetchone()
        return bool(row and row[0])

    def _migrate(self, tx: Any) -> None:
        tx.execute("ALTER TABLE records ADD COLUMN IF NOT EXISTS modified_ms BIGINT")

    def try_lock(self, name: str, holder: str) -> Release | None:
        # a session lock on a connection of its own: the store's transactions never touch it,
        # and the server drops it when the process dies
        conn = psycopg.connect(self._dsn, autocommit=True)
        key = self._key(name)
        taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (taken and taken[0]):
            conn.close()
            return None
        conn.execute(
            "INSERT INTO run_locks (name, holder) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder",
            (name, holder),
        )

        def release() -> None:
            try:
                conn.execute("DELETE FROM run_locks WHERE name = %s", (name,))
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.close()

        return release

    def lock_holder(self, name: str) -> str | None:
        rows = self.query("SELECT holder FROM run_locks WHERE name = {p}", (name,))
        return str(rows[0][0]) if rows else None


def _advisory_key(name: str) -> int:
    """A 64-bit advisory lock key for target-health's lock ``name``."""
    digest = hashlib.blake2b(f"target-health/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _chunks(keys: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """``keys`` a query's worth at a time, each with its ``{p}, {p}, ...`` placeholders."""
    for i in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = list(keys[i : i + _KEYS_PER_QUERY])
        yield chunk, ", ".join(["{p}"] * len(chunk))


def _source_key(stream: str, record_key: str) -> str:
    """The source key (``<crm>:<object>:<id>``) of a record of tap stream ``<crm>_<object>``."""
    crm, _, obj = stream.partition("_")
    return f"{crm}:{obj}:{record_key}"


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def store_url(config: Mapping[str, Any]) -> str:
    """The URL of the store the target's settings name: ``database_url`` (default: SQLite
    under output/), in the PostgreSQL schema ``database_schema`` when one is set (it keeps its
    tables apart from other schemas of the database, and is created when missing). ValueError
    names a setting that is wrong."""
    url = str(config.get("database_url") or DEFAULT_URL)
    check_url(url)
    schema = config.get("database_schema")
    if not schema:
        return url
    if url.startswith("sqlite:"):
        raise ValueError("database_schema is for a PostgreSQL store (database_url is SQLite)")
    if not _SCHEMA_NAME.fullmatch(str(schema)):
        raise ValueError(
            "database_schema must be a PostgreSQL name: lower-case letters, digits and _,"
            " not starting with a digit, at most 63"
        )
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def check_url(url: str) -> None:
    """ValueError unless ``url`` names a kind of store there is (saying which it named, never
    the rest: it may hold a password)."""
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError(
            "database_url must start with sqlite:/// or postgresql:// "
            f"(got {url.split(':', 1)[0]}:...)"
        )


def open_store(url: str = DEFAULT_URL) -> Store:
    """The store at ``url`` (see the module doc), created if missing."""
    check_url(url)
    if url.startswith("sqlite:///"):
        return SqliteStore(url)
    return PostgresStore(url)
