"""Scoring over many accounts' history: ``python bench/scoring.py [--sizes 100000,1000000]``.

:func:`measure_scoring` builds (once, cached in the workdir by size) a SQLite store holding the
canonical records of ``accounts`` customers of the sandbox's deterministic world, written through
the store's own write API as target-health would have stored them from tap-crm (three CRMs,
HubSpot associations as parents, product usage), plus two earlier score snapshots per account
(7 and 30 days before) so the trend reads a history. A store of a multiple of BASE accounts is
made in SQL of copies of the BASE store with every id renamed per copy. Then it runs
target-health's measurement step (``compute``: assemble facts, score, segment, NPS, retention,
write scores and metrics) as a process of its own and returns its seconds, accounts/s and peak
RSS.

Records per account: ~27, i.e. an account record in each of its CRMs, ~1.1 rows per contact and
CRM, ~5 deals over the account's life (new business, yearly renewals, the next renewal, an
expansion), up to a dozen tickets in the last 180 days, 0-6 NPS responses, 12 months of usage.
The sandbox and the taps are skipped on purpose: 1M accounts are ~27M records (~13 GB of store).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_measured  # noqa: E402

from crm_connectors.sandbox.world import Bundle, WorldSpec, generate  # noqa: E402
from target_health.mapping import Mapped, Parent, Row  # noqa: E402
from target_health.scoring import parse_settings  # noqa: E402
from target_health.store import open_store  # noqa: E402

#: Bump when the shape of the built store changes: a cached store of another format is rebuilt.
FORMAT = 1
SEED = 3
AS_OF = WorldSpec().anchor.date()  # the world's "now"
#: Earlier snapshots written with the store, days before AS_OF (30: the trend's window).
HISTORY_DAYS = (30, 7)
WRITE_BATCH = 20_000  # rows per store.write transaction
#: A store of more accounts than this (a multiple of it) is made of copies of this one's
#: records with every id renamed per copy (in SQL: generating and mapping 1M accounts in Python
#: takes most of an hour on this machine); each copy's accounts are distinct customers with the
#: same shapes.
BASE = 100_000
_OBJ = {
    "hubspot": {"account": "companies", "contact": "contacts", "deal": "deals",
                "ticket": "tickets", "nps": "feedback_submissions"},
    "salesforce": {"account": "Account", "contact": "Contact", "deal": "Opportunity",
                   "ticket": "Case", "nps": "NPS_Response__c"},
    "intercom": {"account": "companies", "contact": "contacts", "ticket": "conversations"},
}  # fmt: skip
#: Text that precedes an id in keys, references and the record data; a copy's ids get its
#: number after it ("hubspot:deals:7" -> "hubspot:deals:3.7", "ACC-0000001" -> "ACC-3.0000001").
_ID_PREFIXES = ("ACC-", "tok:v1:bench:", *sorted({f":{o}:" for objs in _OBJ.values()
                                                   for o in objs.values()}))  # fmt: skip


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")
    )


def _token(email: str | None) -> str | None:
    """A keyed e-mail token of the shape tap-crm writes (tok:v1:<key id>:<base64url>)."""
    if email is None:
        return None
    digest = hashlib.blake2b(email.encode(), digest_size=16, key=b"bench").digest()
    return "tok:v1:bench:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def canonical(bundle: Bundle) -> Iterator[Mapped]:
    """One world account as the canonical rows and parents target-health stores for it: what
    mapping.py makes of each CRM's records (schemas/v1), without going through the CRMs."""
    a = bundle.account
    key = a.key

    def ref(crm: str, kind: str, rid: int) -> str:
        return f"{crm}:{_OBJ[crm][kind]}:{rid}"

    def base(crm: str, kind: str, rid: int, deleted: bool, modified: int) -> dict[str, Any]:
        return {"key": ref(crm, kind, rid), "crm": crm, "deleted": deleted,
                "modified": _iso(modified)}  # fmt: skip

    for crm in a.crms:
        state = a.lifecycle.get(crm, "live")
        data = base(crm, "account", key, state != "live", a.updated_ms)
        merged = ref(crm, "account", a.merged_into) if a.merged_into and state == "merged" else None
        data |= {
            "name": a.name,
            "domain": a.domain,
            "external_id": a.external_id,
            "arr": a.arr,
            "seats": a.seats,
            "plan": a.plan,
            "renewal_date": a.renewal_date,
            "customer_since": None if crm == "salesforce" else a.customer_since,
            "churned": None if crm == "intercom" else a.label == "churned",
            "payment_issue": a.payment_issue if crm == "intercom" else None,
            "owner_ref": None if crm == "intercom" else f"{crm}:owners:{a.owner}",
            "merged_into": merged if crm == "salesforce" else None,
        }
        yield Row("account", data)
        if merged and crm == "salesforce":
            yield Parent(data["key"], merged)
    contacts = {}
    for c in bundle.contacts:
        token = _token(c.email)
        for crm in c.crms:
            data = base(crm, "contact", c.key, c.lifecycle.get(crm, "live") != "live",
                        c.updated_ms)  # fmt: skip
            data |= {
                "account_ref": ref(crm, "account", key),
                "email_token": token,
                "title": c.title,
                "created_at": _iso(c.created_ms),
                "last_seen_at": _iso(c.last_seen_ms) if crm == "intercom" else None,
            }
            contacts[(crm, c.key)] = data["key"]
            yield Row("contact", data)
    for d in bundle.deals:
        data = base(d.crm, "deal", d.key, False, d.updated_ms)
        data |= {
            "account_ref": ref(d.crm, "account", key) if d.crm == "salesforce" else None,
            "kind": d.kind,
            "amount": d.amount,
            "stage": d.stage,
            "close_date": d.close_date,
            "created_at": _iso(d.created_ms),
        }
        yield Row("deal", data)
        if d.crm == "hubspot":  # HubSpot: the company -> deal association
            yield Parent(data["key"], ref("hubspot", "account", key))
    for t in bundle.tickets:
        data = base(t.crm, "ticket", t.key, False, t.updated_ms)
        contact = contacts.get((t.crm, t.contact_key)) if t.contact_key else None
        data |= {
            "account_ref": ref(t.crm, "account", key) if t.crm == "salesforce" else None,
            "contact_ref": contact,
            "priority": t.priority if t.crm != "intercom" or t.priority == "high" else None,
            "status": t.status,
            "opened_at": _iso(t.created_ms),
            "closed_at": _iso(t.closed_ms),
            "csat": t.csat,
        }
        yield Row("conversation" if t.crm == "intercom" else "ticket", data)
        if t.crm == "hubspot":
            yield Parent(data["key"], ref("hubspot", "account", key))
    for n in bundle.nps:
        data = base(n.crm, "nps", n.key, False, n.submitted_ms)
        data |= {
            "account_ref": ref(n.crm, "account", key) if n.crm == "salesforce" else None,
            "contact_ref": contacts.get((n.crm, n.contact_key)) if n.contact_key else None,
            "score": n.score,
            "submitted_at": _iso(n.submitted_ms),
        }
        yield Row("nps_response", data)
    for u in bundle.usage:
        ref_ = f"ext:{u.external_id}"
        yield Row("usage", {
            "key": f"usage:{ref_}:{u.month}", "crm": "usage", "deleted": False,
            "modified": None, "account_ref": ref_, "month": u.month,
            "active_users": u.active_users, "seats": u.seats, "logins": u.logins,
            "features_adopted": u.features_adopted,
        })  # fmt: skip


def _history(keys: list[tuple[str, int]], version: str) -> list[tuple[Any, ...]]:
    """Earlier score snapshots of these accounts (deterministic per key), as write_scores takes
    them: compute reads only the date, score and band back."""
    rows: list[tuple[Any, ...]] = []
    for account_key, n in keys:
        for i, days in enumerate(HISTORY_DAYS):
            score = float((n * 37 + i * 11) % 101)
            band = ("healthy" if score >= 70 else "neutral" if score >= 50
                    else "at_risk" if score >= 30 else "critical")  # fmt: skip
            rows.append((account_key, str(AS_OF - dt.timedelta(days=days)), version, score, band,
                         "core", None, None, 0, None, [], {}))  # fmt: skip
    return rows


def build_store(path: Path, accounts: int) -> dict[str, Any]:
    """Write ``accounts`` world accounts' canonical records and score history into a new SQLite
    store at ``path``; returns seconds and counts."""
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    started = time.perf_counter()
    store = open_store(f"sqlite:///{path}")
    store.query("PRAGMA synchronous=OFF")  # a bench store: rebuilt if a crash leaves it torn
    store.query("PRAGMA cache_size=-524288")  # 512 MB of page cache for the bulk insert
    version = parse_settings({}).health.version
    # the world of the CRMs canonical() maps (any other installed CRM takes none of it)
    spec = WorldSpec(size=accounts, seed=SEED, tie_block=0).serving(tuple(_OBJ))
    rows = 0
    batch: list[Mapped] = []
    keys: list[tuple[str, int]] = []
    for bundle in generate(spec):
        batch.extend(canonical(bundle))
        keys.append((f"ext:{bundle.account.external_id}", bundle.account.key))
        if len(batch) >= WRITE_BATCH:
            rows += store.write(batch)
            store.write_scores(_history(keys, version))
            batch, keys = [], []
    rows += store.write(batch)
    store.write_scores(_history(keys, version))
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    seconds = time.perf_counter() - started
    return {"accounts": accounts, "records": rows, "seconds": seconds,
            "db_mb": path.stat().st_size / 1e6, "format": FORMAT}  # fmt: skip


def _renamed(column: str, copy: int) -> str:
    """SQL for ``column`` with every id renamed for copy number ``copy``."""
    sql = column
    for prefix in _ID_PREFIXES:
        sql = f"replace({sql}, '{prefix}', '{prefix}{copy}.')"
    return sql


def replicate_store(path: Path, base: Path, copies: int) -> dict[str, Any]:
    """A new store at ``path`` holding ``copies`` copies of ``base``'s records, parents and
    earlier snapshots, every id renamed per copy (see BASE)."""
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    started = time.perf_counter()
    open_store(f"sqlite:///{path}").close()  # the schema, as the store makes it
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")  # a bench store: rebuilt if a crash leaves it torn
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")  # 1 GB of page cache for the bulk insert
    conn.execute("ATTACH DATABASE ? AS base", (str(base),))
    r = _renamed
    for n in range(copies):
        conn.execute(
            "INSERT INTO records (entity, key, crm, account_ref, contact_ref, token, deleted,"
            f" modified, data) SELECT entity, {r('key', n)}, crm, {r('account_ref', n)},"
            f" {r('contact_ref', n)}, {r('token', n)}, deleted, modified, {r('data', n)}"
            " FROM base.records"
        )
        conn.execute(
            f"INSERT INTO parents (child, account_ref) SELECT {r('child', n)},"
            f" {r('account_ref', n)} FROM base.parents"
        )
        conn.execute(
            f"INSERT INTO scores SELECT {r('account_key', n)}, as_of, model_version, score, band,"
            " segment, trend, nps, nps_responses, churned_on, factors, detail FROM base.scores"
            " WHERE as_of < ?",
            (str(AS_OF),),
        )
        conn.commit()
    rows = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    conn.close()
    return {"records": rows, "seconds": time.perf_counter() - started,
            "db_mb": path.stat().st_size / 1e6, "format": FORMAT}  # fmt: skip


def _store(workdir: Path, accounts: int) -> tuple[Path, dict[str, Any], float]:
    """The store of ``accounts`` accounts, built unless cached: its path, what its build
    reported, and the seconds spent building it now (0 when cached)."""
    db = workdir / f"scoring-{accounts}.sqlite"
    marker = workdir / f"scoring-{accounts}.json"
    built = json.loads(marker.read_text()) if marker.exists() and db.exists() else None
    if built is not None and built.get("format") == FORMAT:
        return db, built, 0.0
    marker.unlink(missing_ok=True)
    if accounts > BASE and accounts % BASE == 0:
        base, _, spent = _store(workdir, BASE)
        built = replicate_store(db, base, accounts // BASE)
        built["seconds"] += spent
    else:
        built = build_store(db, accounts)
    built["accounts"] = accounts
    marker.write_text(json.dumps(built))
    return db, built, built["seconds"]


def measure_scoring(workdir: Path, accounts: int) -> dict[str, Any]:
    """Build (or reuse) the store of ``accounts`` accounts under ``workdir``, then time
    ``compute`` over it in its own process. Returns accounts, records, build seconds (0 when
    cached), seconds, accounts/s and peak RSS (MB) of the scoring process."""
    workdir.mkdir(parents=True, exist_ok=True)
    db, built, build_seconds = _store(workdir, accounts)
    out = workdir / f"scoring-{accounts}.out.json"
    out.unlink(missing_ok=True)
    run = run_measured(
        [sys.executable, str(Path(__file__).resolve()), "compute", str(db), str(out)],
        workdir / "scoring.log",
    )
    scored = json.loads(out.read_text())
    return {
        "accounts": accounts,
        "records": built["records"],
        "build_seconds": build_seconds,
        "build_cached_seconds": built["seconds"],
        "scored_accounts": scored["accounts"],
        "seconds": run["seconds"],
        "compute_seconds": scored["seconds"],
        "accounts_per_s": scored["accounts"] / run["seconds"],
        "rss_mb": run["rss_mb"],
    }


def _compute(db: Path, out: Path) -> None:
    """The measured process: target-health's compute over the store, its summary to ``out``."""
    from target_health.compute import compute

    started = time.perf_counter()
    store = open_store(f"sqlite:///{db}")
    summary = compute(store, parse_settings({}), AS_OF)
    store.close()
    out.write_text(json.dumps({
        "accounts": summary.accounts, "scored": summary.scored,
        "seconds": time.perf_counter() - started, "nps": summary.nps,
        "bands": dict(summary.bands), "retention": summary.retention,
    }))  # fmt: skip


def main(argv: list[str]) -> None:
    if argv[:1] == ["compute"]:
        _compute(Path(argv[1]), Path(argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir(), "scoring-bench")
    )
    args = parser.parse_args(argv)
    results = [measure_scoring(args.workdir, int(n)) for n in args.sizes.split(",")]
    for r in results:
        print(json.dumps(r))
    if len(results) > 1:
        first, last = results[0], results[-1]
        rss = last["rss_mb"] / first["rss_mb"]
        speed = last["accounts_per_s"] / first["accounts_per_s"]
        print(f"{last['accounts']} vs {first['accounts']} accounts: peak RSS x{rss:.2f},"
              f" accounts/s x{speed:.2f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
