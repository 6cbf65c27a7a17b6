"""Benchmarks: ``python3 dev.py bench [--sizes 10000,100000] [--full]``.

Measures, in one run on this machine, and prints a table (also written to bench/RESULTS.md):

- seeding: seconds and records/s for each size (``--full`` adds 1,000,000 accounts);
- serving: pages/s and records/s each vendor's listing serves at its largest page size, the
  sandbox running as its own process (as in a pipeline) and the client reusing one connection;
- tap-crm: a full sync of each CRM (every stream, PII encrypted) from the ``--tap-size`` seed,
  as a process against the sandbox: records/s, API calls per 1,000 records, peak RSS; then an
  incremental rerun from its state: records read and API calls;
- target-health: the three taps' output through validation, mapping, the SQLite store and
  scoring: records/s and peak RSS;
- write-back: write calls per CRM for the scores of every account against
  ceil(records / batch maximum), and a rerun with no change (0 calls).

Figures on shared 2-core machines are noisy: compare ratios from one run, never absolute numbers
across runs. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors"))

from crm_connectors.pii import new_key  # noqa: E402
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS  # noqa: E402
from crm_connectors.sandbox.seed import seed  # noqa: E402
from crm_connectors.sandbox.world import WorldSpec  # noqa: E402

HS = {"Authorization": f"Bearer {DEFAULT_CREDENTIALS['hubspot']['private_app_token']}"}
IC = {
    "Authorization": f"Bearer {DEFAULT_CREDENTIALS['intercom']['access_token']}",
    "Intercom-Version": "2.14",
}


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


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
    records = sum(sum(c.values()) for c in summary["records"].values())  # type: ignore[union-attr]
    return {
        "size": size,
        "seconds": seconds,
        "records": records,
        "records_per_s": records / seconds,
        "db_mb": db.stat().st_size / 1e6,
    }, db


def _start(db: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    ready = workdir / f"ready-{os.getpid()}-{time.time_ns()}.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_connectors.sandbox.cli", "serve", "--db", str(db),
         "--port", "0", "--no-rate-limits", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.1)
    time.sleep(0.1)
    return proc, json.loads(ready.read_text())


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
    return {"pages": pages, "records": records, "pages_per_s": pages / seconds,
            "records_per_s": records / seconds}  # fmt: skip


def bench_serve(db: Path, workdir: Path, budget_s: float) -> list[dict[str, Any]]:
    proc, urls = _start(db, workdir)
    rows = []
    try:
        hs, sf, ic = urls["hubspot"], urls["salesforce"], urls["intercom"]

        def hubspot_list(c: httpx.Client, after: Any) -> tuple[int, Any]:
            params = {"limit": 100, **({"after": after} if after else {})}
            body = c.get(f"{hs}/crm/v3/objects/contacts", params=params, headers=HS).json()
            return len(body["results"]), body.get("paging", {}).get("next", {}).get("after")

        def hubspot_search(c: httpx.Client, after: Any) -> tuple[int, Any]:
            req = {
                "filterGroups": [{"filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GT", "value": "0"}]}],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 200, "after": after or "0", "properties": ["email", "firstname"],
            }  # fmt: skip
            resp = c.post(f"{hs}/crm/v3/objects/contacts/search", json=req, headers=HS)
            if resp.status_code == 429:  # the separate search budget: 5 requests/s
                time.sleep(0.2)
                return 0, after
            body = resp.json()
            nxt = body.get("paging", {}).get("next", {}).get("after")
            return len(body["results"]), nxt if nxt and int(nxt) < 9_800 else None

        creds = DEFAULT_CREDENTIALS["salesforce"]
        auth = httpx.post(
            f"{sf}/services/oauth2/token",
            data={"grant_type": "refresh_token", "client_id": creds["client_id"],
                  "client_secret": creds["client_secret"], "refresh_token": creds["refresh_token"]},
        ).json()  # fmt: skip
        sf_headers = {"Authorization": f"Bearer {auth['access_token']}"}
        soql = "SELECT Id, FirstName, LastName, Email, SystemModstamp FROM Contact"

        def salesforce_query(c: httpx.Client, nxt: Any) -> tuple[int, Any]:
            if nxt is None:
                resp = c.get(f"{sf}/services/data/v66.0/query", params={"q": soql},
                             headers=sf_headers)  # fmt: skip
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
        rows.append({"route": "sandbox peak RSS (MB)", "rss_mb": _rss_mb(proc.pid)})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def _tap(
    config: dict[str, Any], workdir: Path, state: Any = None, save: Path | None = None
) -> dict[str, Any]:
    """One tap-crm process: records, STATE, seconds and peak RSS (VmHWM, sampled while it runs:
    wait4's ru_maxrss would include this bench process's own peak, inherited across exec)."""
    cfg = workdir / "tap-config.json"
    cfg.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "tap_crm.tap", "--config", str(cfg)]
    if state is not None:
        (workdir / "tap-state.json").write_text(json.dumps(state))
        cmd += ["--state", str(workdir / "tap-state.json")]
    records = 0
    rss = 0.0
    last_state = None
    started = time.perf_counter()
    with open(workdir / "tap.log", "ab") as log, open(save or os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith(b'{"type":"RECORD"'):
                records += 1
            elif line.startswith(b'{"type":"STATE"'):
                last_state = json.loads(line)["value"]
                rss = max(rss, _rss_mb(proc.pid))
        status = proc.wait()
    seconds = time.perf_counter() - started
    if status:
        raise RuntimeError(f"tap-crm failed; see {workdir / 'tap.log'}")
    return {"records": records, "seconds": seconds, "state": last_state, "rss_mb": rss}


def _calls(admin: str) -> dict[str, int]:
    body = httpx.get(f"{admin}/_sandbox/stats", timeout=30).json()
    return {v: int(s["calls"]) for v, s in body["vendors"].items()}


TAP_CRMS = {
    "hubspot": {
        "hubspot_access_token": DEFAULT_CREDENTIALS["hubspot"]["private_app_token"],
        "hubspot_search_settle_seconds": 0,
        # The sandbox runs with rate limits off here: measure the tap, not HubSpot's 5/s.
        "hubspot_search_requests_per_second": 10_000,
    },
    "salesforce": {
        "salesforce_client_id": DEFAULT_CREDENTIALS["salesforce"]["client_id"],
        "salesforce_client_secret": DEFAULT_CREDENTIALS["salesforce"]["client_secret"],
        "salesforce_refresh_token": DEFAULT_CREDENTIALS["salesforce"]["refresh_token"],
    },
    "intercom": {
        "intercom_access_token": DEFAULT_CREDENTIALS["intercom"]["access_token"],
        "intercom_search_settle_seconds": 0,
    },
}


def bench_tap(db: Path, workdir: Path) -> list[dict[str, Any]]:
    proc, urls = _start(db, workdir)
    rows = []
    url_setting = {
        "hubspot": "hubspot_base_url",
        "salesforce": "salesforce_login_url",
        "intercom": "intercom_base_url",
    }
    try:
        for crm, settings in TAP_CRMS.items():
            config = {
                "crms": [crm],
                url_setting[crm]: urls[crm],
                "pii_keys": f"b1:{new_key()}",
                "pii_hmac_keys": f"h1:{new_key()}",
                **settings,
            }
            before = _calls(urls["admin"])
            full = _tap(config, workdir, save=workdir / f"tap-{crm}.jsonl")
            middle = _calls(urls["admin"])
            again = _tap(config, workdir, full["state"])
            after = _calls(urls["admin"])
            calls = middle.get(crm, 0) - before.get(crm, 0)
            rows.append({
                "crm": crm,
                "records": full["records"],
                "seconds": full["seconds"],
                "records_per_s": full["records"] / full["seconds"],
                "calls": calls,
                "calls_per_1k": 1000 * calls / max(full["records"], 1),
                "rss_mb": full["rss_mb"],
                "rerun_records": again["records"],
                "rerun_calls": after.get(crm, 0) - middle.get(crm, 0),
            })  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def bench_target(workdir: Path, crms: list[str], as_of: str) -> dict[str, Any]:
    """target-health over the saved tap output of every CRM: validation, mapping, store
    (SQLite) and measurement, records/s and peak RSS (VmHWM sampled every 50 ms)."""
    stream = workdir / "tap-all.jsonl"
    with stream.open("wb") as out:
        for crm in crms:
            out.write((workdir / f"tap-{crm}.jsonl").read_bytes())
    records = sum(1 for line in stream.open("rb") if line.startswith(b'{"type":"RECORD"'))
    db = workdir / "health-bench.sqlite"
    for old in workdir.glob("health-bench.sqlite*"):
        old.unlink()
    cfg = workdir / "target-config.json"
    cfg.write_text(json.dumps({"database_url": f"sqlite:///{db}", "as_of": as_of}))
    cmd = [sys.executable, "-m", "target_health.target", "--config", str(cfg)]
    cmd += ["--input", str(stream)]
    rss = 0.0
    started = time.perf_counter()
    with open(workdir / "target.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        while proc.poll() is None:
            rss = max(rss, _rss_mb(proc.pid))
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"target-health failed; see {workdir / 'target.log'}")
    return {"records": records, "seconds": seconds, "rss_mb": rss}


def bench_writeback(workdir: Path, db: Path) -> list[dict[str, Any]]:
    """Write-back of the bench store's scores into a sandbox serving the same seed: write calls
    per CRM against ceil(records / batch maximum), then a rerun with no change."""
    from target_health.store import open_store
    from target_health.writeback import plan as wb
    from target_health.writeback.crm import writers

    proc, urls = _start(db, workdir)
    try:
        config: dict[str, Any] = {
            "hubspot_base_url": urls["hubspot"],
            "salesforce_login_url": urls["salesforce"],
            "intercom_base_url": urls["intercom"],
        }
        for settings in TAP_CRMS.values():
            config |= settings
        store = open_store(f"sqlite:///{workdir / 'health-bench.sqlite'}")
        crm_writers = writers(config)
        for writer in crm_writers:
            assert writer.ensure_fields().ok
        started = time.perf_counter()
        plan = wb.make_plan(store, crm_writers)
        applied = wb.apply(store, plan, crm_writers)
        seconds = time.perf_counter() - started
        again = wb.make_plan(store, crm_writers)
        rerun = wb.apply(store, again, crm_writers)
        rows = []
        for writer in crm_writers:
            records = plan.counts()["by_crm"].get(writer.crm, 0)
            calls = applied.calls.get(writer.crm, 0)
            rows.append({
                "crm": writer.crm, "records": records, "batch_max": writer.batch_max,
                "calls": calls, "expected": math.ceil(records / writer.batch_max),
                "per_1k": 1000 * calls / max(records, 1),
                "failed": sum(1 for f in applied.failed if f[0] == writer.crm),
                "rerun_items": len(again.items), "rerun_calls": rerun.calls.get(writer.crm, 0),
                "seconds": seconds,
            })  # fmt: skip
            writer.close()
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="accounts to seed, comma-separated")
    parser.add_argument("--full", action="store_true", help="also seed 1,000,000 accounts")
    parser.add_argument("--serve-size", type=int, default=None, help="which seeded size to serve")
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per serving benchmark")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--tap-size", type=int, default=10_000, help="seeded size tap-crm reads")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.tap_size not in sizes:
        sizes.insert(0, args.tap_size)
    if args.full and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    lines = [
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}"
        f" ({os.cpu_count()} cores, Python {platform.python_version()},"
        f" SQLite {__import__('sqlite3').sqlite_version})",
        "",
        "| seed: accounts | records | seconds | records/s | database MB |",
        "|---:|---:|---:|---:|---:|",
    ]
    dbs = {}
    for size in sizes:
        result, db = bench_seed(size, workdir)
        dbs[size] = db
        lines.append(
            f"| {size:,} | {result['records']:,} | {result['seconds']:.1f} |"
            f" {result['records_per_s']:,.0f} | {result['db_mb']:,.0f} |"
        )
        print(lines[-1], flush=True)
    serve_size = args.serve_size or max((s for s in sizes if s <= 100_000), default=min(sizes))
    serve_db = dbs[serve_size]
    lines += [
        "",
        f"Serving from the {serve_db.name} database, sandbox in its own process, rate limits off,"
        f" one keep-alive client, {args.budget:.0f} s per route:",
        "",
        "| route | page size | pages | pages/s | records/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in bench_serve(serve_db, workdir, args.budget):
        if "rss_mb" in row:
            lines.append(f"| {row['route']} | | | | {row['rss_mb']:,.0f} |")
        else:
            lines.append(
                f"| {row['route']} | {row['page_size']} | {row['pages']:,} |"
                f" {row['pages_per_s']:,.1f} | {row['records_per_s']:,.0f} |"
            )
        print(lines[-1], flush=True)
    lines += [
        "",
        f"tap-crm, one process per CRM, every stream, PII encrypted, from the"
        f" {dbs[args.tap_size].name} database (sandbox rate limits off, HubSpot search pacing"
        " lifted); then an incremental rerun from the full sync's state with nothing changed"
        " (owners, admins, tags and Intercom companies are read again; HubSpot associations"
        " at most daily):",
        "",
        "| CRM | records | seconds | records/s | API calls | calls / 1,000 records |"
        " peak RSS MB | rerun records | rerun calls |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench_tap(dbs[args.tap_size], workdir):
        lines.append(
            f"| {row['crm']} | {row['records']:,} | {row['seconds']:.1f} |"
            f" {row['records_per_s']:,.0f} | {row['calls']:,} | {row['calls_per_1k']:.2f} |"
            f" {row['rss_mb']:,.0f} | {row['rerun_records']:,} | {row['rerun_calls']:,} |"
        )
        print(lines[-1], flush=True)
    target = bench_target(workdir, list(TAP_CRMS), WorldSpec().anchor.date().isoformat())
    lines += [
        "",
        "target-health alone over those three outputs (validation against stream and canonical"
        " schemas, mapping, SQLite upserts, scoring every account):",
        "",
        "| records | seconds | records/s | peak RSS MB |",
        "|---:|---:|---:|---:|",
        f"| {target['records']:,} | {target['seconds']:.1f} |"
        f" {target['records'] / target['seconds']:,.0f} | {target['rss_mb']:,.0f} |",
    ]
    print(lines[-1], flush=True)
    lines += [
        "",
        "Write-back of those scores into a sandbox serving the same seed (plan against current"
        " values, then apply; write calls counted by the adapters), then a rerun with no change:",
        "",
        "| CRM | records changed | batch max | write calls | ceil(records / batch) |"
        " calls per 1,000 records | failed | rerun changes | rerun write calls |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench_writeback(workdir, dbs[args.tap_size]):
        lines.append(
            f"| {row['crm']} | {row['records']:,} | {row['batch_max']} | {row['calls']:,} |"
            f" {row['expected']:,} | {row['per_1k']:.1f} | {row['failed']} |"
            f" {row['rerun_items']} | {row['rerun_calls']} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if not args.no_write:
        results = ROOT / "bench" / "RESULTS.md"
        results.write_text(
            "# Benchmark results\n\nLatest run of `python3 dev.py bench`"
            f" (arguments: {' '.join(argv or sys.argv[1:]) or 'defaults'}).\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
