"""Benchmarks: ``python3 dev.py bench [--workdir DIR] [--scoring-dir DIR] [--quick] [--full]``.

Seeds the sandbox and measures, side by side in one run on this machine, then prints a table
(also written to bench/RESULTS.md with the date and the machine):

1. seeding and serving: how fast the sandbox builds and serves each vendor's listings;
2. tap-crm beside the peer taps (singer-io tap-hubspot, tap-salesforce, tap-intercom and
   MeltanoLabs meltano-tap-hubspot, each from PyPI in its own venv under bench/.venvs) on HubSpot
   contacts, Salesforce accounts and Intercom contacts, the first 100,000 records of the 100k seed;
3. peak RSS of tap-crm and of target-health at 100,000 and at 1,000,000 records;
4. the whole pipeline (``meltano run tap-crm target-health``) beside a plain singer-sdk tap |
   target pair on the same records (bench/pipeline.py);
5. a rate-limited run against HubSpot's burst window and search budget (bench/ratelimit.py);
6. every stream of each CRM, then an incremental rerun after 1% of the records changed
   (bench/incremental.py); target-health over the full syncs' output; write-back calls;
7. scoring over 100,000 and 1,000,000 accounts' history (bench/scoring.py);
8. tap-crm on the seeded world beside the realistic one (long schemas; bench/profiles.py).

Targets (issue #6) are checked as ratios from this one run at the end. Figures on shared 2-core
machines are noisy: compare ratios from one run, never absolute numbers across runs. Nothing
here is asserted by tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from common import (
    BENCH_CRMS,
    ROOT,
    api_calls,
    crm_settings,
    rss_mb,
    run_measured,
    run_singer,
    start_sandbox,
    stop,
    tap_command,
    tap_config,
)
from incremental import measure_incremental
from peers import Peer, ensure_venv
from peers.hubspot import PEERS as HUBSPOT_PEERS
from peers.intercom import PEERS as INTERCOM_PEERS
from peers.salesforce import PEERS as SALESFORCE_PEERS
from pipeline import measure_pipelines
from profiles import measure as measure_profiles
from profiles import section as profiles_section
from ratelimit import measure_rate_limited
from scoring import measure_scoring

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec

HS = {"Authorization": f"Bearer {DEFAULT_CREDENTIALS['hubspot']['private_app_token']}"}
IC = {
    "Authorization": f"Bearer {DEFAULT_CREDENTIALS['intercom']['access_token']}",
    "Intercom-Version": "2.14",
}
#: The stream each CRM is compared on, and the peers that read it.
STREAMS = {
    "hubspot": "hubspot_contacts",
    "salesforce": "salesforce_Account",
    "intercom": "intercom_contacts",
}
PEERS: dict[str, list[Peer]] = {
    "hubspot": HUBSPOT_PEERS,
    "salesforce": SALESFORCE_PEERS,
    "intercom": INTERCOM_PEERS,
}
AS_OF = WorldSpec().anchor.date().isoformat()
RATE_LIMITED_SIZE = 3_000  # accounts: about 300 list calls, half a minute at 100 per 10 s


class Report:
    """The lines of the table, printed as they come."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, text: str, header: list[str], align: str) -> None:
        self.lines += [
            "",
            text,
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
        ]
        print("\n".join(self.lines[-5:]), flush=True)

    def row(self, *cells: Any) -> None:
        self.lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        print(self.lines[-1], flush=True)

    def text(self, text: str) -> None:
        self.lines += ["", text]
        print("\n" + text, flush=True)


def _n(value: float) -> str:
    return f"{value:,.0f}" if value == value else "n/a"


def _x(value: float) -> str:
    return f"{value:.1f}x" if value == value else "n/a"


# -- 1. seeding and serving ------------------------------------------------------------------------


def bench_seed(size: int, workdir: Path) -> tuple[dict[str, Any], Path]:
    db = workdir / f"bench-{size}.sqlite"
    for old in workdir.glob(f"bench-{size}.sqlite*"):  # a rerun in the same workdir
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    started = time.perf_counter()
    summary = seed(db, WorldSpec(size=size, seed=1))
    seconds = time.perf_counter() - started
    records = sum(sum(c.values()) for c in summary["records"].values())
    return {
        "size": size,
        "seconds": seconds,
        "records": records,
        "records_per_s": records / seconds,
        "db_mb": db.stat().st_size / 1e6,
    }, db


def _pages(fetch: Callable[[httpx.Client, Any], tuple[int, Any]], budget_s: float) -> dict:
    pages = records = 0
    cursor: Any = None
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        while time.perf_counter() - started < budget_s:
            n, cursor = fetch(client, cursor)
            pages += 1
            records += n
            if cursor is None:
                break
    seconds = time.perf_counter() - started
    return {
        "pages": pages,
        "records": records,
        "pages_per_s": pages / seconds,
        "records_per_s": records / seconds,
    }


def bench_serve(db: Path, workdir: Path, budget_s: float) -> list[dict[str, Any]]:
    proc, urls = start_sandbox(db, workdir)
    rows = []
    try:
        hs, sf, ic = urls["hubspot"], urls["salesforce"], urls["intercom"]

        def hubspot_list(c: httpx.Client, after: Any) -> tuple[int, Any]:
            params = {"limit": 100, **({"after": after} if after else {})}
            body = c.get(f"{hs}/crm/v3/objects/contacts", params=params, headers=HS).json()
            return len(body["results"]), body.get("paging", {}).get("next", {}).get("after")

        def hubspot_search(c: httpx.Client, after: Any) -> tuple[int, Any]:
            req = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "lastmodifieddate", "operator": "GT", "value": "0"}
                        ]
                    }
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 200,
                "after": after or "0",
                "properties": ["email", "firstname"],
            }
            body = c.post(f"{hs}/crm/v3/objects/contacts/search", json=req, headers=HS).json()
            nxt = body.get("paging", {}).get("next", {}).get("after")
            return len(body["results"]), nxt if nxt and int(nxt) < 9_800 else None

        creds = DEFAULT_CREDENTIALS["salesforce"]
        auth = httpx.post(
            f"{sf}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "refresh_token": creds["refresh_token"],
            },
        ).json()
        sf_headers = {"Authorization": f"Bearer {auth['access_token']}"}
        soql = "SELECT Id, FirstName, LastName, Email, SystemModstamp FROM Contact"

        def salesforce_query(c: httpx.Client, nxt: Any) -> tuple[int, Any]:
            if nxt is None:
                resp = c.get(
                    f"{sf}/services/data/v66.0/query", params={"q": soql}, headers=sf_headers
                )
            else:
                resp = c.get(f"{sf}{nxt}", headers=sf_headers)
            body = resp.json()
            return len(body["records"]), None if body["done"] else body["nextRecordsUrl"]

        def intercom_list(c: httpx.Client, after: Any) -> tuple[int, Any]:
            params = {"per_page": 150, **({"starting_after": after} if after else {})}
            body = c.get(f"{ic}/contacts", params=params, headers=IC).json()
            nxt = (body.get("pages") or {}).get("next") or {}
            return len(body["data"]), nxt.get("starting_after")

        for name, fetch, page in (
            ("HubSpot contacts list", hubspot_list, 100),
            ("HubSpot contacts search", hubspot_search, 200),
            ("Salesforce Contact query", salesforce_query, 2000),
            ("Intercom contacts list", intercom_list, 150),
        ):
            result = _pages(fetch, budget_s)
            rows.append({"route": name, "page_size": page, **result})
        rows.append({"route": "sandbox peak RSS (MB)", "rss_mb": rss_mb(proc.pid)})
    finally:
        stop(proc)
    return rows


# -- 2. tap-crm beside the peers ---------------------------------------------------------------


def _measured(
    tap: str, crm: str, cmd: list[str], urls: dict[str, str], workdir: Path, limit: int
) -> dict[str, Any]:
    before = api_calls(urls["admin"]).get(crm, 0)
    run = run_singer(cmd, workdir / f"stream-{crm}.log", stop_after=limit)
    calls = api_calls(urls["admin"]).get(crm, 0) - before
    return {
        "tap": tap,
        "crm": crm,
        "stream": STREAMS[crm],
        "records": run["records"],
        "seconds": run["seconds"],
        "records_per_s": run["records"] / run["seconds"],
        "rss_mb": run["rss_mb"],
        "calls": calls,
    }


def bench_streams(db: Path, workdir: Path, limit: int) -> list[dict[str, Any]]:
    """tap-crm (PII encrypted, as shipped; and with PII kept, doing what the peers do) and each
    peer on one stream per CRM, up to ``limit`` records, against one sandbox (limits off)."""
    proc, urls = start_sandbox(db, workdir)
    rows = []
    try:
        for crm, stream in STREAMS.items():
            for label, overrides in (
                ("tap-crm", {}),
                ("tap-crm, PII kept as the peers do", {"pii_default_mode": "keep"}),
            ):
                config = tap_config(crm, urls, **overrides)
                cmd = tap_command(config, workdir, streams=[stream], name=f"stream-{crm}")
                rows.append(_measured(label, crm, cmd, urls, workdir, limit))
            for peer in PEERS[crm]:
                python = ensure_venv(peer.venv, peer.requirements)
                cmd = peer.prepare(python, urls, workdir)
                rows.append(_measured(peer.name, crm, cmd, urls, workdir, limit))
    finally:
        stop(proc)
    return rows


# -- 3. memory at 100k and 1M records --------------------------------------------------------


def _sample(source: Path, dest: Path, every: int) -> int:
    """Every ``every``-th RECORD of each stream of ``source`` (and every SCHEMA) into ``dest``:
    the same mix of streams at 1/every the size. Returns the records written."""
    seen: dict[bytes, int] = {}
    written = 0
    with source.open("rb") as lines, dest.open("wb") as out:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                stream = line[27 : line.index(b'"', 27)]  # {"type":"RECORD","stream":"
                seen[stream] = seen.get(stream, 0) + 1
                if seen[stream] % every:
                    continue
                written += 1
            elif not line.startswith(b'{"type":"SCHEMA"'):
                continue
            out.write(line)
    return written


def run_target(source: Path, workdir: Path, name: str) -> dict[str, Any]:
    """target-health over a file of Singer messages into a new SQLite store: validation against
    stream and canonical schemas, mapping, upserts and scoring every account."""
    db = workdir / f"{name}.sqlite"
    for old in workdir.glob(f"{name}.sqlite*"):
        old.unlink()
    cfg = workdir / f"{name}-config.json"
    cfg.write_text(json.dumps({"database_url": f"sqlite:///{db}", "as_of": AS_OF}))
    cmd = [
        sys.executable,
        "-m",
        "target_health.target",
        "--config",
        str(cfg),
        "--input",
        str(source),
    ]
    records = sum(1 for line in source.open("rb") if line.startswith(b'{"type":"RECORD"'))
    return {"records": records, **run_measured(cmd, workdir / f"{name}.log")}


def bench_memory(db: Path, workdir: Path) -> dict[str, Any]:
    """tap-crm over every HubSpot stream of ``db`` up to 1M records (peak RSS when the 100,000th
    and the 1,000,000th record arrive); then target-health over those 1M records and over every
    tenth record of each stream of them (100k records of the same mix: the tap's output comes
    stream by stream, so its first 100k records would be associations alone)."""
    marks = (100_000, 1_000_000)
    out = workdir / "memory-hubspot.jsonl"
    proc, urls = start_sandbox(db, workdir)
    try:
        cmd = tap_command(tap_config("hubspot", urls), workdir, name="memory")
        tap = run_singer(cmd, workdir / "memory.log", save=out, stop_after=marks[-1], rss_at=marks)
    finally:
        stop(proc)
    targets = {}
    if tap["records"] == marks[-1]:
        tenth = workdir / "memory-tenth.jsonl"
        _sample(out, tenth, marks[-1] // marks[0])
        targets[marks[0]] = run_target(tenth, workdir, "memory-target-tenth")
        targets[marks[-1]] = run_target(out, workdir, "memory-target-all")
        tenth.unlink()
    out.unlink()
    return {
        "tap": tap["rss_at"],
        "target": {r["records"]: r["rss_mb"] for r in targets.values()},
        "target_records": [r["records"] for r in targets.values()],
    }


# -- 6. write-back -------------------------------------------------------------------------------


def bench_writeback(store_db: Path, workdir: Path, db: Path) -> list[dict[str, Any]]:
    """Write-back of the scores in ``store_db`` into a sandbox serving ``db``: write calls per
    CRM against ceil(records / batch maximum), then a rerun with no change."""
    from target_health.store import open_store
    from target_health.writeback import plan as wb
    from target_health.writeback.crm import writers

    proc, urls = start_sandbox(db, workdir)
    try:
        config: dict[str, Any] = {"crms": list(BENCH_CRMS), **crm_settings(urls)}
        store = open_store(f"sqlite:///{store_db}")
        crm_writers = writers(config)
        for writer in crm_writers:
            assert writer.ensure_fields().ok
        plan = wb.make_plan(store, crm_writers)
        applied = wb.apply(store, plan, crm_writers)
        again = wb.make_plan(store, crm_writers)
        rerun = wb.apply(store, again, crm_writers)
        rows = []
        for writer in crm_writers:
            records = plan.counts()["by_crm"].get(writer.crm, 0)
            calls = applied.calls.get(writer.crm, 0)
            rows.append(
                {
                    "crm": writer.crm,
                    "records": records,
                    "batch_max": writer.batch_max,
                    "calls": calls,
                    "expected": math.ceil(records / writer.batch_max),
                    "per_1k": 1000 * calls / max(records, 1),
                    "failed": sum(1 for f in applied.failed if f[0] == writer.crm),
                    "rerun_items": len(again.items),
                    "rerun_calls": rerun.calls.get(writer.crm, 0),
                }
            )
            writer.close()
        return rows
    finally:
        stop(proc)


# -- the run -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temp dir")
    parser.add_argument("--full", action="store_true", help="also seed 1,000,000 accounts")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (2,000 / 10,000 accounts, 10,000 records, scoring 20,000): a smoke run",
    )
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per serving benchmark")
    parser.add_argument(
        "--scoring-dir",
        type=Path,
        default=None,
        help="where the scoring stores are built and kept (the 1M store takes ~15 GB and ~18"
        " minutes to build: point at a kept directory to reuse it); default: in the workdir",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args(argv)
    small, large = (2_000, 10_000) if args.quick else (10_000, 100_000)
    records = 10_000 if args.quick else 100_000
    scoring_sizes = (20_000,) if args.quick else (100_000, 1_000_000)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = Report()
    report.text(
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}"
        f" ({os.cpu_count()} cores, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version})"
    )
    checks: list[tuple[str, str, bool]] = []

    # 1. seeding and serving
    report.section(
        "Seeding the sandbox (every vendor, one world):",
        ["seed: accounts", "records", "seconds", "records/s", "database MB"],
        "rrrrr",
    )
    dbs = {}
    for size in (small, large, *((1_000_000,) if args.full else ())):
        result, dbs[size] = bench_seed(size, workdir)
        report.row(
            f"{size:,}",
            f"{result['records']:,}",
            f"{result['seconds']:.1f}",
            _n(result["records_per_s"]),
            _n(result["db_mb"]),
        )
    report.section(
        f"Serving from the {dbs[large].name} database, sandbox in its own process, rate limits"
        f" off, one keep-alive client, {args.budget:.0f} s per route:",
        ["route", "page size", "pages", "pages/s", "records/s"],
        "lrrrr",
    )
    for row in bench_serve(dbs[large], workdir, args.budget):
        if "rss_mb" in row:
            report.row(row["route"], "", "", "", _n(row["rss_mb"]))
        else:
            report.row(
                row["route"],
                row["page_size"],
                f"{row['pages']:,}",
                f"{row['pages_per_s']:,.1f}",
                _n(row["records_per_s"]),
            )

    # 2. tap-crm beside the peers
    report.section(
        f"tap-crm and the peer taps, one stream each, the first {records:,} records of the"
        f" {dbs[large].name} database (or all it holds), each a process reading one sandbox"
        " (limits off); API calls exclude discovery:",
        [
            "CRM",
            "stream",
            "tap",
            "records",
            "seconds",
            "records/s",
            "peak RSS MB",
            "API calls",
            "tap-crm / this",
        ],
        "lllrrrrrr",
    )
    streams = bench_streams(dbs[large], workdir, records)
    ours = {r["crm"]: r["records_per_s"] for r in streams if r["tap"] == "tap-crm"}
    for row in streams:
        report.row(
            row["crm"],
            row["stream"],
            row["tap"],
            f"{row['records']:,}",
            f"{row['seconds']:.1f}",
            _n(row["records_per_s"]),
            _n(row["rss_mb"]),
            f"{row['calls']:,}",
            _x(ours[row["crm"]] / row["records_per_s"]),
        )
    peers = [r for r in streams if not r["tap"].startswith("tap-crm")]
    fastest = max(peers, key=lambda r: r["records_per_s"])
    for crm, rate in ours.items():
        best = max((r for r in peers if r["crm"] == crm), key=lambda r: r["records_per_s"])
        ratio = rate / best["records_per_s"]
        checks.append(
            (f"tap-crm >= 10x the fastest {crm} peer ({best['tap']})", _x(ratio), ratio >= 10)
        )
    ratio = min(ours.values()) / fastest["records_per_s"]
    checks.append(
        (
            f"tap-crm (slowest CRM) >= 10x the fastest peer ({fastest['tap']})",
            _x(ratio),
            ratio >= 10,
        )
    )

    # 3. memory
    memory = bench_memory(dbs[large], workdir)
    report.section(
        f"Peak RSS (MB) at 100,000 and 1,000,000 records: tap-crm over every HubSpot stream of"
        f" the {dbs[large].name} database (when the n-th record arrived); target-health over"
        " those 1M records (validation, mapping, store, scoring every account) and over every"
        " tenth record of each of their streams (the same mix at a tenth of the size):",
        ["process", "100,000 records", "1,000,000 records", "1M / 100k"],
        "lrrr",
    )
    low_high = {"tap": (100_000, 1_000_000), "target": tuple(memory["target_records"] or (0, 0))}
    for name in ("tap", "target"):
        low_n, high_n = low_high[name]
        low, high = memory[name].get(low_n, math.nan), memory[name].get(high_n, math.nan)
        report.row(name, _n(low), _n(high), f"{high / low:.2f}")
        checks.append(
            (f"{name} peak RSS at 1M <= 1.2x at 100k", f"{high / low:.2f}", high <= 1.2 * low)
        )

    # 4. the pipeline
    report.section(
        f"The pipeline beside a plain singer-sdk tap | target pair (validation on), HubSpot"
        f" companies, contacts, deals and tickets of the {dbs[small].name} database"
        " (bench/pipeline.py):",
        [
            "pipeline",
            "records",
            "seconds",
            "records/s",
            "records / CPU s",
            "API calls",
            "peak RSS MB (meltano / tap / target)",
        ],
        "lrrrrrl",
    )
    pipelines = measure_pipelines(dbs[small], workdir / "pipeline")
    for row in pipelines:
        rss = row.get("rss_mb") or {}
        report.row(
            row["pipeline"],
            f"{row['records']:,}",
            f"{row['seconds']:.1f}",
            _n(row["records_per_s"]),
            _n(row["records_per_cpu_s"]),
            f"{row['api_calls']:,}",
            " / ".join(_n(v) for v in rss.values()) if isinstance(rss, dict) else _n(rss),
        )
    plain = next(r for r in pipelines if r["pipeline"].startswith("plain"))
    meltano = next(r for r in pipelines if r["pipeline"].startswith("meltano"))
    ratio = meltano["records_per_s"] / plain["records_per_s"]
    checks.append(
        ("meltano run tap-crm target-health >= 5x the plain singer-sdk pair", _x(ratio), ratio >= 5)
    )

    # 5. rate limits
    limit, interval_ms, search = 100, 10_000, 5
    limited_db = workdir / f"ratelimit-{RATE_LIMITED_SIZE}.sqlite"
    if not limited_db.exists():
        seed(limited_db, WorldSpec(size=RATE_LIMITED_SIZE, seed=1), ("hubspot",))
    limited = measure_rate_limited(limited_db, workdir / "ratelimit", limit, interval_ms, search)
    report.section(
        f"Rate-limited: tap-crm over every HubSpot stream of a {RATE_LIMITED_SIZE:,}-account"
        f" HubSpot seed against a sandbox enforcing HubSpot's limits ({limit} calls per"
        f" {interval_ms / 1000:g} s rolling window, search {search}/s), against the quota's"
        " optimum for the same calls in the same order (bench/ratelimit.py):",
        [
            "budget",
            "API calls",
            "seconds",
            "optimum seconds",
            "share of optimum",
            "429s",
            "429s after the first window",
        ],
        "lrrrrrr",
    )
    for name, budget in limited["budgets"].items():
        report.row(
            f"{name} ({budget['quota']})",
            f"{budget['calls']:,}",
            f"{budget['seconds']:.1f}",
            f"{budget['optimum_s']:.1f}",
            f"{100 * budget['share']:.1f}%",
            budget["throttled"],
            budget["throttled_after_first_window"],
        )
    report.row(
        f"all ({limited['records']:,} records)",
        f"{limited['calls']:,}",
        f"{limited['span_s']:.1f}",
        f"{limited['optimum_s']:.1f}",
        f"{100 * limited['share']:.1f}%",
        limited["throttled"],
        limited["throttled_after_first_window"],
    )
    checks.append(
        (
            "rate-limited run >= 90% of the quota optimum",
            f"{100 * limited['share']:.1f}%",
            limited["share"] >= 0.9,
        )
    )
    checks.append(
        (
            "no 429 after the first window",
            str(limited["throttled_after_first_window"]),
            limited["throttled_after_first_window"] == 0,
        )
    )

    # 6. every stream, incremental, target-health, write-back (on a copy: edits change it)
    edited_db = workdir / f"incremental-{large}.sqlite"
    shutil.copyfile(dbs[large], edited_db)
    incremental = measure_incremental(edited_db, workdir)
    report.section(
        f"tap-crm, every stream of each CRM of the {dbs[large].name} database, PII encrypted;"
        " then 1% of the object records edited through each vendor's API and an incremental"
        " rerun from the full sync's STATE (bench/incremental.py):",
        [
            "CRM",
            "records",
            "seconds",
            "records/s",
            "API calls",
            "edited",
            "rerun records",
            "rerun seconds",
            "rerun calls",
            "rerun / full calls",
            "rerun calls by route",
        ],
        "lrrrrrrrrrl",
    )
    for row in incremental:
        routes = ", ".join(f"{r} {n}" for r, n in sorted(row["rerun_routes"].items()))
        report.row(
            row["crm"],
            f"{row['records']:,}",
            f"{row['seconds']:.1f}",
            _n(row["records"] / row["seconds"]),
            f"{row['calls']:,}",
            f"{row['edited']:,}",
            f"{row['rerun_records']:,}",
            f"{row['rerun_seconds']:.1f}",
            f"{row['rerun_calls']:,}",
            f"{100 * row['share']:.1f}%",
            routes,
        )
        checks.append(
            (
                f"{row['crm']} incremental rerun <= 5% of the full sync's calls",
                f"{100 * row['share']:.1f}%",
                row["share"] <= 0.05,
            )
        )
    full_calls = sum(r["calls"] for r in incremental)
    rerun_calls = sum(r["rerun_calls"] for r in incremental)
    checks.append(
        (
            "all CRMs: incremental rerun <= 5% of the full sync's calls",
            f"{100 * rerun_calls / full_calls:.1f}%",
            rerun_calls <= 0.05 * full_calls,
        )
    )
    combined = workdir / "incremental-all.jsonl"
    with combined.open("wb") as out:
        for crm in BENCH_CRMS:
            out.write((workdir / f"incremental-{crm}.jsonl").read_bytes())
    target = run_target(combined, workdir, "health-bench")
    report.section(
        "target-health alone over those three full syncs (validation against stream and"
        " canonical schemas, mapping, SQLite upserts, scoring every account):",
        ["records", "seconds", "records/s", "peak RSS MB"],
        "rrrr",
    )
    report.row(
        f"{target['records']:,}",
        f"{target['seconds']:.1f}",
        _n(target["records"] / target["seconds"]),
        _n(target["rss_mb"]),
    )
    report.section(
        "Write-back of those scores into the sandbox serving the same (edited) database (plan"
        " against current values, then apply; write calls counted by the adapters), then a"
        " rerun with no change:",
        [
            "CRM",
            "records changed",
            "batch max",
            "write calls",
            "ceil(records / batch)",
            "calls per 1,000 records",
            "failed",
            "rerun changes",
            "rerun write calls",
        ],
        "lrrrrrrrr",
    )
    for row in bench_writeback(workdir / "health-bench.sqlite", workdir, edited_db):
        report.row(
            row["crm"],
            f"{row['records']:,}",
            row["batch_max"],
            f"{row['calls']:,}",
            f"{row['expected']:,}",
            f"{row['per_1k']:.1f}",
            row["failed"],
            row["rerun_items"],
            row["rerun_calls"],
        )
        checks.append(
            (
                f"{row['crm']} write calls = ceil(changes / batch max), 0 on a rerun",
                f"{row['calls']:,} / {row['expected']:,}; rerun {row['rerun_calls']}",
                row["calls"] == row["expected"] and row["rerun_calls"] == 0,
            )
        )

    # 7. scoring
    report.section(
        "Scoring (target-health's measurement step, its own process) over a store holding the"
        " history of n accounts, built straight into SQLite (bench/scoring.py):",
        ["accounts", "store records", "seconds", "accounts/s", "peak RSS MB"],
        "rrrrr",
    )
    scored = {}
    for size in scoring_sizes:
        scored[size] = row = measure_scoring(args.scoring_dir or workdir / "scoring", size)
        report.row(
            f"{size:,}",
            f"{row['records']:,}",
            f"{row['seconds']:.1f}",
            _n(row["accounts_per_s"]),
            _n(row["rss_mb"]),
        )
    if len(scoring_sizes) == 2:
        low, high = (scored[s]["rss_mb"] for s in scoring_sizes)
        checks.append(
            (
                "scoring peak RSS at 1M accounts <= 1.2x at 100k",
                f"{high / low:.2f}",
                high <= 1.2 * low,
            )
        )

    # 8. the realistic world beside the seeded one
    profile_size = 1_000 if args.quick else 5_000
    block = profiles_section(measure_profiles(workdir, profile_size), profile_size)
    report.lines += ["", *block]
    print("\n".join(block), flush=True)

    report.section("Targets (issue #6), from this run:", ["target", "measured", "met"], "llr")
    for name, measured, met in checks:
        report.row(name, measured, "yes" if met else "**no**")
    table = "\n".join(report.lines).strip()
    if not args.no_write:
        results = ROOT / "bench" / "RESULTS.md"
        results.write_text(
            "# Benchmark results\n\nLatest run of `python3 dev.py bench"
            f"{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`."
            f" What limits each figure: bench/README.md.\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
