"""``python3 dev.py demo``: seed the CRM sandbox, serve it, and sync it with tap-crm.

Seeds a deterministic customer base into ``demo-data/``, serves HubSpot, Salesforce and Intercom
on loopback (with the vendors' real rate limits), runs ``tap-crm`` against them as a process —
a full sync, then an incremental rerun from its state — and prints what came out: records per
CRM, API calls, how PII left the tap, and what the rerun had to read. Then it keeps serving (the
web page shows every record) until Ctrl-C, unless ``--no-serve``.

The tap's Singer output and state are kept in the demo directory; its PII keys are generated once
into ``demo-data/pii-keys.env`` (the same variables Meltano reads from a project's ``.env``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .app import Sandbox, SandboxConfig
from .auth import DEFAULT_CREDENTIALS
from .seed import exports_dir, seed
from .world import WorldSpec


def _keys(path: Path) -> dict[str, str]:
    """The demo's PII keys, made once (0600) with crm-pii-keygen's format."""
    if not path.exists():
        from tap_crm.keygen import main as keygen  # the tap's own generator

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            saved, sys.stdout = sys.stdout, out
            try:
                keygen(["--key-id", "demo"])
            finally:
                sys.stdout = saved
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _config(urls: dict[str, str], keys: dict[str, str]) -> dict[str, Any]:
    sf = DEFAULT_CREDENTIALS["salesforce"]
    return {
        "pii_keys": keys["TAP_CRM_PII_KEYS"],
        "pii_hmac_keys": keys["TAP_CRM_PII_HMAC_KEYS"],
        "hubspot_base_url": urls["hubspot"],
        "hubspot_access_token": DEFAULT_CREDENTIALS["hubspot"]["private_app_token"],
        "salesforce_login_url": urls["salesforce"],
        "salesforce_client_id": sf["client_id"],
        "salesforce_client_secret": sf["client_secret"],
        "salesforce_refresh_token": sf["refresh_token"],
        "intercom_base_url": urls["intercom"],
        "intercom_access_token": DEFAULT_CREDENTIALS["intercom"]["access_token"],
        "intercom_search_settle_seconds": 0,  # the sandbox indexes at once
    }


def _run_tap(
    workdir: Path, config: dict[str, Any], state: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], float]:
    (workdir / "tap-config.json").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "tap_crm.tap", "--config", str(workdir / "tap-config.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        cmd += ["--state", str(workdir / "state.json")]
    out_path = workdir / ("tap-incremental.jsonl" if state else "tap-full.jsonl")
    started = time.perf_counter()
    with open(out_path, "wb") as out, open(workdir / "tap.log", "ab") as log:
        code = subprocess.run(cmd, stdout=out, stderr=log, check=False).returncode  # noqa: S603
    seconds = time.perf_counter() - started
    if code:
        tail = (workdir / "tap.log").read_text(errors="replace").splitlines()[-5:]
        raise SystemExit(
            f"tap-crm failed ({code}); the end of {workdir / 'tap.log'}:\n" + "\n".join(tail)
        )
    with open(out_path, "rb") as f:
        return [json.loads(line) for line in f if line.strip()], seconds


def _by_crm(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(m["stream"].split("_")[0] for m in messages if m["type"] == "RECORD")


def _calls(sandbox: Sandbox) -> dict[str, int]:
    snap = sandbox.ctx.stats.snapshot()
    return {v: int(s.get("calls", 0)) for v, s in snap.get("vendors", {}).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py demo", description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="accounts to seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("demo-data"))
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--no-serve", action="store_true", help="exit after showing the result")
    args = parser.parse_args(argv)

    db = args.dir / f"crm-{args.size}-{args.seed}.sqlite"
    if not db.exists():
        print(f"Seeding {args.size:,} accounts into {db} ...", flush=True)
        summary = seed(db, WorldSpec(size=args.size, seed=args.seed))
        print(f"  done in {summary['seconds']} s: {summary['records']}")
    with open(exports_dir(db) / "accounts.csv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    labels = Counter(row["label"] for row in truth)
    keys = _keys(args.dir / "pii-keys.env")

    try:
        sandbox = Sandbox(SandboxConfig(db_path=db, port=args.port)).start()
    except OSError:
        print(f"Port {args.port} is busy; picking free ports instead.", flush=True)
        sandbox = Sandbox(SandboxConfig(db_path=db, port=0)).start()
    try:
        print("\nThe CRM sandbox is serving (with each vendor's real rate limits):")
        for name, url in sandbox.urls.items():
            print(f"  {name:<10} {url}")
        print(
            f"\nGround truth: {len(truth):,} accounts "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(labels.items()))
        )
        config = _config(sandbox.urls, keys)
        print(
            "\ntap-crm, full sync (HubSpot search is paced to its 5 requests/s budget) ...",
            flush=True,
        )
        before = _calls(sandbox)
        full, seconds = _run_tap(args.dir, config, None)
        calls = {v: n - before.get(v, 0) for v, n in _calls(sandbox).items()}
        records = _by_crm(full)
        print(f"  {'CRM':<11}{'streams':>8}{'records':>10}{'API calls':>11}{'calls/1k rec':>14}")
        streams = Counter(m["stream"].split("_")[0] for m in full if m["type"] == "SCHEMA")
        for crm in ("hubspot", "salesforce", "intercom"):
            per_k = 1000 * calls.get(crm, 0) / max(records[crm], 1)
            print(
                f"  {crm:<11}{streams[crm]:>8}{records[crm]:>10,}{calls.get(crm, 0):>11,}"
                f"{per_k:>14.1f}"
            )
        total = sum(records.values())
        print(f"  {total:,} records in {seconds:.1f} s ({total / seconds:,.0f} records/s)")
        contact = next(
            m["record"] for m in full if m["type"] == "RECORD" and m["stream"] == "hubspot_contacts"
        )
        print("\nPII leaves the tap encrypted (AES-256-GCM) with keyed tokens for joins, e.g.:")
        for field in ("email", "email__token", "firstname", "jobtitle"):
            value = str(contact.get(field))
            print(f"  hubspot_contacts.{field:<13} {value[:60]}{'...' if len(value) > 60 else ''}")
        state = next(m["value"] for m in reversed(full) if m["type"] == "STATE")
        before = _calls(sandbox)
        again, seconds = _run_tap(args.dir, config, state)
        calls = {v: n - before.get(v, 0) for v, n in _calls(sandbox).items()}
        print(
            f"\nIncremental rerun from that state: {sum(_by_crm(again).values()):,} records"
            f" (full-table streams: owners, associations, admins, tags, companies scroll) with"
            f" {sum(calls.values())} API calls, in {seconds:.1f} s."
        )
        print(f"\nSinger output, state and logs: {args.dir}/ (tap-full.jsonl, state.json, tap.log)")
        print(f"Web page: {sandbox.urls['admin']}/  (every object and record, as a CRM user sees)")
        if args.no_serve:
            return 0
        print("Serving until Ctrl-C ...", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
