"""``crm-sandbox seed``: fill the sandbox database from a generated world.

The world (``world.py``) is vendor-neutral; each vendor's ``seed.py`` maps bundles into that CRM's
records (``VendorSeeder``). Product usage is not CRM data: it is exported as a CSV file beside the
database (``<db>.exports/usage.csv``), as a data team would hold it, together with the ground-truth
labels (``<db>.exports/accounts.csv``) that tests and backtests read.
"""

from __future__ import annotations

import csv
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .store import Store
from .world import CRMS, Bundle, WorldSpec, generate

log = logging.getLogger(__name__)

SEEDERS = {vendor: f"crm_connectors.{vendor}.seed:Seeder" for vendor in CRMS}


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
    module_name, _, class_name = SEEDERS[vendor].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def seed(
    db_path: str | Path,
    spec: WorldSpec,
    vendors: tuple[str, ...] = CRMS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Seed a new database at ``db_path``; refuses one that already holds records."""
    store = Store(db_path)
    if store.conn().execute("SELECT 1 FROM records LIMIT 1").fetchone():
        store.close()
        raise FileExistsError(f"{db_path} already holds records; seed a new file or remove it")
    started = time.perf_counter()
    conn = store.conn()
    # Bulk load: no fsync until the end; the file is new, so a crash loses nothing of value.
    conn.execute("PRAGMA synchronous = OFF")
    seeders = {vendor: load_seeder(vendor)(store, spec) for vendor in vendors}
    out = exports_dir(db_path)
    out.mkdir(parents=True, exist_ok=True)
    labels = {label: 0 for label in ("healthy", "declining", "at_risk", "churned")}
    with (
        open(out / "usage.csv", "w", newline="", encoding="utf-8") as usage_file,
        open(out / "accounts.csv", "w", newline="", encoding="utf-8") as truth_file,
    ):
        usage = csv.writer(usage_file)
        usage.writerow(
            ["account_external_id", "domain", "month", "active_users", "logins",
             "features_adopted", "seats"]
        )  # fmt: skip
        truth = csv.writer(truth_file)
        truth.writerow(
            ["key", "external_id", "domain", "label", "arr", "seats", "renewal_date",
             "churned_on", "crms", "edge"]
        )  # fmt: skip
        for n, bundle in enumerate(generate(spec), start=1):
            a = bundle.account
            for seeder in seeders.values():
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
    counts = {vendor: seeder.finish() for vendor, seeder in seeders.items()}
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    store.close()
    return {
        "accounts": spec.size,
        "seed": spec.seed,
        "labels": labels,
        "records": counts,
        "exports": str(out),
        "seconds": round(time.perf_counter() - started, 2),
    }
