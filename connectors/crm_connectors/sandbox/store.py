"""The sandbox's state: one SQLite file, so writes persist across restarts and reads see them.

Layout (shared by every vendor emulator and by the seeder):

``records``
    One row per CRM record. ``seq`` is the insertion order and the stable sort key of list
    endpoints. ``vendor`` is ``hubspot`` / ``salesforce`` / ``intercom``; ``object`` is the
    vendor's own object name (``companies``, ``Account``, ``contacts``...). ``id`` is the vendor's
    id as a string. ``created_ms`` / ``updated_ms`` are epoch milliseconds of creation and last
    modification (HubSpot ``hs_lastmodifieddate``, Salesforce ``SystemModstamp``, Intercom
    ``updated_at``); every write must move ``updated_ms`` together with the field inside ``data``.
    ``state`` is one of the ``LIVE`` / ``ARCHIVED`` / ``MERGED`` / ``PURGED`` constants below.
    ``data`` is the record as JSON, in the vendor's own format:

    - hubspot: ``{"properties": {name: str | null}}`` (values are strings, as HubSpot returns
      them; ``mergedInto`` holds the surviving id of a merged record);
    - salesforce: ``{Field: value}`` with JSON-typed values (numbers, booleans, strings, null);
    - intercom: the API object as Intercom returns it (``updated_at`` in unix seconds).

``associations``
    Links between two records of one vendor (HubSpot associations, Salesforce lookups when
    useful). ``kind`` is the vendor's association type.

``counters``
    Named integer sequences (ids, request ids), persistent so ids never repeat after a restart.

``tokens``
    Access and refresh tokens the sandbox issued or accepts (see ``auth.py``).

``meta``
    Free-form JSON documents per vendor (custom property definitions, describe metadata...).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

LIVE = 0
ARCHIVED = 1  # HubSpot archived / Salesforce recycle bin (IsDeleted) / Intercom archived
MERGED = 2  # merged into another record; ``data`` says which
PURGED = 3  # permanently deleted; kept only so a "deleted since" feed can report it

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS records (
    seq        INTEGER PRIMARY KEY,
    vendor     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    state      INTEGER NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records (vendor, object, id);
CREATE INDEX IF NOT EXISTS records_modified ON records (vendor, object, updated_ms, id);
CREATE TABLE IF NOT EXISTS associations (
    vendor    TEXT NOT NULL,
    from_type TEXT NOT NULL,
    from_id   TEXT NOT NULL,
    to_type   TEXT NOT NULL,
    to_id     TEXT NOT NULL,
    kind      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (vendor, from_type, from_id, to_type, to_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token      TEXT PRIMARY KEY,
    vendor     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    expires_at REAL,
    info       TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    vendor TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (vendor, name)
) WITHOUT ROWID;
"""


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class RowBuffer:
    """A seeder's records of one vendor, written with :meth:`Store.insert_many` in batches of
    ``batch`` per object; ``counts`` holds how many of each were written."""

    def __init__(self, store: Store, vendor: str, batch: int) -> None:
        self.store, self.vendor, self.batch = store, vendor, batch
        self.rows: dict[str, list[tuple[str, int, int, int, str]]] = {}
        self.counts: dict[str, int] = {}

    def put(self, obj: str, rid: object, created_ms: int, updated_ms: int, state: int,
            data: Any) -> None:  # fmt: skip
        rows = self.rows.setdefault(obj, [])
        rows.append((str(rid), created_ms, updated_ms, state, orjson.dumps(data).decode()))
        if len(rows) >= self.batch:
            self.flush(obj)

    def flush(self, obj: str | None = None) -> None:
        """Write the rows held of ``obj`` (default: of every object)."""
        for name in [obj] if obj is not None else list(self.rows):
            rows = self.rows.get(name)
            if rows:
                written = self.store.insert_many(self.vendor, name, rows)
                self.counts[name] = self.counts.get(name, 0) + written
                rows.clear()


class Store:
    """Thread-safe access to the sandbox database: one connection per thread, one writer at a time.

    Reads run concurrently (WAL). Writes go through :meth:`write`, which serialises writers in
    this process so that a multi-statement change (read-modify-write) is atomic.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        with self._write_lock:
            self.conn().executescript(SCHEMA)  # executescript manages its own transaction

    # -- connections -------------------------------------------------------------------------

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; commits on success, rolls back on any exception."""
        with self._write_lock:
            conn = self.conn()
            if conn.in_transaction:  # nested use inside one write: join the outer transaction
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- counters ----------------------------------------------------------------------------

    def next_ids(self, name: str, count: int = 1, start: int = 1) -> range:
        """Reserve ``count`` consecutive integers of the sequence ``name``."""
        with self.write() as conn:
            row = conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + ? RETURNING value",
                (name, start - 1 + count, count),
            ).fetchone()
        end = int(row[0])
        return range(end - count + 1, end + 1)

    def peek_counter(self, name: str) -> int:
        row = self.conn().execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    # -- records -----------------------------------------------------------------------------

    def get(self, vendor: str, obj: str, rid: str) -> sqlite3.Row | None:
        cur = self.conn().execute(
            "SELECT seq, id, created_ms, updated_ms, state, data FROM records"
            " WHERE vendor = ? AND object = ? AND id = ?",
            (vendor, obj, rid),
        )
        row: sqlite3.Row | None = cur.fetchone()
        return row

    def insert_many(
        self,
        vendor: str,
        obj: str,
        rows: Iterable[tuple[str, int, int, int, str]],
    ) -> int:
        """Insert ``(id, created_ms, updated_ms, state, data_json)`` rows; returns the count."""
        with self.write() as conn:
            cur = conn.executemany(
                "INSERT INTO records (vendor, object, id, created_ms, updated_ms, state, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((vendor, obj, *row) for row in rows),
            )
            return cur.rowcount

    def put(
        self,
        vendor: str,
        obj: str,
        rid: str,
        data: Any,
        *,
        created_ms: int,
        updated_ms: int,
        state: int = LIVE,
    ) -> None:
        """Insert or replace one record (keeping its ``seq`` when it already exists)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO records (vendor, object, id, created_ms, updated_ms, state, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (vendor, object, id) DO UPDATE SET"
                " updated_ms = excluded.updated_ms, state = excluded.state, data = excluded.data",
                (vendor, obj, rid, created_ms, updated_ms, state, dumps(data)),
            )

    def set_state(self, vendor: str, obj: str, rid: str, state: int, updated_ms: int) -> bool:
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE records SET state = ?, updated_ms = ?"
                " WHERE vendor = ? AND object = ? AND id = ?",
                (state, updated_ms, vendor, obj, rid),
            )
            return cur.rowcount > 0

    def count(self, vendor: str, obj: str, state: int | None = LIVE) -> int:
        if state is None:
            sql, args = (
                "SELECT count(*) FROM records WHERE vendor = ? AND object = ?",
                (vendor, obj),
            )
        else:
            sql = "SELECT count(*) FROM records WHERE vendor = ? AND object = ? AND state = ?"
            args = (vendor, obj, state)  # type: ignore[assignment]
        return int(self.conn().execute(sql, args).fetchone()[0])

    def objects(self) -> list[tuple[str, str, int]]:
        """``(vendor, object, live count)`` for every object type that has records."""
        rows = self.conn().execute(
            "SELECT vendor, object, sum(state = 0) FROM records GROUP BY vendor, object"
            " ORDER BY vendor, object"
        )
        return [(v, o, int(n or 0)) for v, o, n in rows]

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, vendor: str, name: str, default: Any = None) -> Any:
        row = (
            self.conn()
            .execute("SELECT value FROM meta WHERE vendor = ? AND name = ?", (vendor, name))
            .fetchone()
        )
        return loads(row[0]) if row else default

    def set_meta(self, vendor: str, name: str, value: Any) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO meta (vendor, name, value) VALUES (?, ?, ?)"
                " ON CONFLICT (vendor, name) DO UPDATE SET value = excluded.value",
                (vendor, name, dumps(value)),
            )
