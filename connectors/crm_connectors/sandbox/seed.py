"""``crm-sandbox seed``: fill the sandbox database from a generated world.

The world (``world.py``) is vendor-neutral; each vendor's ``seed.py`` maps bundles into that CRM's
records (``VendorSeeder``). Product usage is not CRM data: it is exported as a CSV file beside the
database (``<db>.exports/usage.csv``), as a data team would hold it, together with the ground-truth
labels (``<db>.exports/accounts.csv``) that tests and backtests read.
"""

from __future__ import annotations

import csv
import gc
import logging
import multiprocessing
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

from .emulators import emulators
from .store import SCHEMA, Store
from .world import Bundle, WorldSpec, generate

log = logging.getLogger(__name__)

#: SQLite page cache per seeding connection (KiB): the unique index of a million-account load
#: is several hundred MB; pages that stay cached are not re-read.
BULK_CACHE_KIB = 512 * 1024


class VendorSeeder(Protocol):
    """Maps world bundles into one CRM's records; buffers and writes in large batches."""

    def __init__(self, store: Store, spec: WorldSpec) -> None: ...

    def add(self, bundle: Bundle) -> None:
        """Take one account's bundle (the seeder skips what does not live in its CRM)."""

    def finish(self) -> dict[str, int]:
        """Flush, write metadata and id counters; return record counts per object."""


def exports_dir(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".exports")


def load_seeder(vendor: str) -> Callable[[Store, WorldSpec], VendorSeeder]:
    return emulators()[vendor].seeder


TRUTH_HEADER = ("key", "external_id", "domain", "label", "arr", "seats", "renewal_date",
                "churned_on", "crms", "edge")  # fmt: skip
USAGE_HEADER = ("account_external_id", "domain", "month", "active_users", "logins",
                "features_adopted", "seats")  # fmt: skip


def _seed_range(
    db_path: Path,
    spec: WorldSpec,
    vendors: tuple[str, ...],
    start: int,
    stop: int,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Seed accounts ``[start, stop)`` into ``db_path`` and write their exports under ``out``
    (without header rows); returns the label counts. Runs in a worker process for big seeds."""
    store = Store(db_path)
    _bulk_load_mode(store.conn())
    # The seed makes millions of acyclic objects and keeps big row buffers alive: the cyclic
    # garbage collector would only rescan them, so it pauses (no cycles are made).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _seed_accounts(store, spec, vendors, start, stop, out, progress)
    finally:
        store.close()
        if gc_was_enabled:
            gc.enable()


def _bulk_load_mode(conn: sqlite3.Connection) -> None:
    """Settings for loading a new file: a failed seed leaves nothing of value, so no journal,
    no fsync, one exclusive lock, a big page cache. ``records_modified`` is dropped: maintaining
    it row by row is slower than building it once (``_build_indexes``, at the end)."""
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    conn.execute("DROP INDEX IF EXISTS records_modified")


def _seed_accounts(
    store: Store,
    spec: WorldSpec,
    vendors: tuple[str, ...],
    start: int,
    stop: int,
    out: Path,
    progress: Callable[[int], None] | None,
) -> dict[str, int]:
    seeders = [load_seeder(vendor)(store, spec) for vendor in vendors]
    labels = dict.fromkeys(("healthy", "declining", "at_risk", "churned"), 0)
    with (
        open(out / "usage.csv", "w", newline="", encoding="utf-8") as usage_file,
        open(out / "accounts.csv", "w", newline="", encoding="utf-8") as truth_file,
    ):
        usage, truth = csv.writer(usage_file), csv.writer(truth_file)
        for n, bundle in enumerate(generate(spec, start, stop), start=1):
            a = bundle.account
            for seeder in seeders:
                seeder.add(bundle)
            usage.writerows(
                (u.external_id, a.domain or "", u.month, u.active_users, u.logins,
                 u.features_adopted, u.seats)
                for u in bundle.usage
            )  # fmt: skip
            truth.writerow(
                (a.key, a.external_id, a.domain or "", a.label, a.arr, a.seats, a.renewal_date,
                 a.churned_on or "", "|".join(a.crms), a.edge or "")
            )  # fmt: skip
            labels[a.label] += 1
            if progress and n % 10_000 == 0:
                progress(n)
    for seeder in seeders:
        seeder.finish()
    return labels


def _merge(conn: sqlite3.Connection, part: Path) -> None:
    """Append a part database to the main one. Records are appended in the part's order (so
    ``seq`` follows account keys); records every part writes alike (admins, users, attribute
    definitions) are kept once; counters take the maximum; vendor-made tables come along."""
    conn.execute("ATTACH DATABASE ? AS part", (str(part),))
    try:
        conn.execute("BEGIN")
        main_tables = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master")}
        part_objects = conn.execute(
            "SELECT type, name, sql FROM part.sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%' ORDER BY type DESC"  # tables before indexes
        ).fetchall()
        for _kind, name, sql in part_objects:
            if name not in main_tables:
                conn.execute(sql)
        conn.execute(
            "INSERT OR IGNORE INTO records (vendor, object, id, created_ms, updated_ms, state,"
            " data) SELECT vendor, object, id, created_ms, updated_ms, state, data"
            " FROM part.records ORDER BY seq"
        )
        conn.execute(
            "INSERT INTO counters SELECT name, value FROM part.counters WHERE true"
            " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)"
        )
        conn.execute("INSERT OR REPLACE INTO meta SELECT * FROM part.meta")
        for kind, name, _ in part_objects:
            if kind == "table" and name not in {"records", "counters", "meta", "tokens"}:
                conn.execute(f'INSERT OR IGNORE INTO main."{name}" SELECT * FROM part."{name}"')
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("DETACH DATABASE part")


def _build_indexes(db_path: Path) -> None:
    """Recreate the indexes dropped for the load (the store's own schema statements), with a
    page cache big enough to sort a million-account table in memory, and back to WAL mode."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB * 2}")
        conn.executescript(SCHEMA)
    finally:
        conn.close()


def _is_empty(store: Store) -> bool:
    """True when no table of the database holds a row (a file ``seed`` may replace)."""
    conn = store.conn()
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return not any(conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables)


def seed(
    db_path: str | Path,
    spec: WorldSpec,
    vendors: tuple[str, ...] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> dict[str, object]:
    """Seed a new database at ``db_path`` with the world ``spec`` as ``vendors`` (default: all of
    its CRMs) hold it (``WorldSpec.serving``); refuses one that already holds records.

    From 40,000 accounts the work is split by account range over ``workers`` processes (default:
    the CPU count, at most 4), each writing its own part file; the parts are then merged with
    SQLite's own INSERT ... SELECT. The result is the same as a single-process seed.
    """
    db_path = Path(db_path)
    if vendors is None:
        vendors = tuple(p.name for p in spec.crms)
    spec = spec.serving(vendors)
    store = Store(db_path)
    if store.conn().execute("SELECT 1 FROM records LIMIT 1").fetchone():
        store.close()
        raise FileExistsError(f"{db_path} already holds records; seed a new file or remove it")
    started = time.perf_counter()
    out = exports_dir(db_path)
    out.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if spec.size >= 40_000 else 1
    bounds = [1 + spec.size * i // workers for i in range(workers + 1)]
    labels: Counter[str] = Counter()
    if workers == 1:
        store.close()
        labels.update(_seed_range(db_path, spec, vendors, 1, spec.size + 1, out, progress))
        parts: list[tuple[Path, Path]] = [(db_path, out)]
    else:
        parts = []
        for i in range(workers):
            part_db = db_path.with_name(f"{db_path.name}.part{i}")
            for stale in (part_db, Path(f"{part_db}-wal"), Path(f"{part_db}-shm")):
                stale.unlink(missing_ok=True)
            part_out = out / f"part{i}"
            part_out.mkdir(exist_ok=True)
            parts.append((part_db, part_out))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_seed_range, part_db, spec, vendors, lo, hi, part_out)
                for (part_db, part_out), lo, hi in zip(parts, bounds, bounds[1:], strict=False)
            ]
            for future in futures:
                labels.update(future.result())
        log.info("seed: %d workers done in %.1fs", workers, time.perf_counter() - started)
        merged = parts
        empty = _is_empty(store)
        store.close()
        if empty:
            # The first part becomes the database and the others are appended to it: the same
            # rows and seqs as appending every part to the empty file, with half the copying.
            for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
                stale.unlink(missing_ok=True)
            parts[0][0].replace(db_path)
            merged = parts[1:]
        # A plain connection: ``Store()`` would build the index the merge then drops.
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            _bulk_load_mode(conn)
            for part_db, _ in merged:
                _merge(conn, part_db)
        finally:
            conn.close()
        for part_db, _ in parts:
            for leftover in (part_db, Path(f"{part_db}-wal"), Path(f"{part_db}-shm")):
                leftover.unlink(missing_ok=True)
        log.info("seed: parts merged at %.1fs", time.perf_counter() - started)
    _join_exports(out, [part_out for _, part_out in parts])

    _build_indexes(db_path)
    store = Store(db_path)
    conn = store.conn()
    counts: dict[str, dict[str, int]] = {vendor: {} for vendor in vendors}
    for vendor, obj, n in conn.execute(
        "SELECT vendor, object, count(*) FROM records GROUP BY vendor, object"
    ):
        counts.setdefault(vendor, {})[obj] = n
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    store.close()
    log.info("seed: indexed and analysed at %.1fs", time.perf_counter() - started)
    return {
        "accounts": spec.size,
        "seed": spec.seed,
        "labels": dict(labels),
        "records": counts,
        "exports": str(out),
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _join_exports(out: Path, part_dirs: list[Path]) -> None:
    """Put the header rows on, and the parts' rows in key order under them."""
    for name, header in (("usage.csv", USAGE_HEADER), ("accounts.csv", TRUTH_HEADER)):
        target = out / f"{name}.tmp"
        with open(target, "w", newline="", encoding="utf-8") as joined:
            csv.writer(joined).writerow(header)
            for part_dir in part_dirs:
                with open(part_dir / name, encoding="utf-8", newline="") as part:
                    shutil.copyfileobj(part, joined, 1 << 20)
        for part_dir in part_dirs:
            (part_dir / name).unlink()
            if part_dir != out and not any(part_dir.iterdir()):
                part_dir.rmdir()
        target.replace(out / name)
