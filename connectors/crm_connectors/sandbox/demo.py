"""``python3 dev.py demo``: the main job, ``meltano run tap-crm target-health``, on the sandbox.

Seeds a deterministic customer base into ``demo-data/``, serves every installed CRM's emulator
on loopback with the vendors' real rate limits, and runs the project's own meltano.yml (``dev``
environment) against them: tap-crm reads every CRM, target-health validates, maps, stores
(SQLite: ``demo-data/health.sqlite``), measures health as of the world's "now" and writes the
scores back into each CRM. Then it prints what happened: API calls per CRM, records stored,
quarantined, records written back, bands against the seed's ground truth, NPS and retention, one
critical account with its reasons; and an incremental rerun (which writes nothing). The
sandbox keeps serving (its web page shows every record) until Ctrl-C, unless ``--no-serve``.

PII keys are generated once into ``demo-data/pii-keys.env``; Meltano's state lives in
``demo-data/meltano.db`` with the data it belongs to.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from ..pii import new_key_settings
from .app import Sandbox, SandboxConfig
from .emulators import client_settings
from .seed import exports_dir, seed
from .world import WorldSpec

ROOT = Path(__file__).resolve().parents[3]
MELTANO = str(Path(sys.executable).parent / "meltano")


def _keys(path: Path) -> dict[str, str]:
    """The demo's PII keys, made once (0600) in crm-pii-keygen's format."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            for name, value in new_key_settings("demo").items():
                out.write(f"TAP_CRM_{name.upper()}={value}\n")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _calls(sandbox: Sandbox) -> dict[str, int]:
    snap = sandbox.ctx.stats.snapshot()
    return {v: int(s.get("calls", 0)) for v, s in snap.get("vendors", {}).items()}


def _env(urls: dict[str, str], keys: dict[str, str], workdir: Path, db: Path) -> dict[str, str]:
    """Meltano's environment: the dev environment's settings pointed at this sandbox."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_CRM_", "TARGET_HEALTH_"))}
    # Every CRM's settings for this sandbox, for the tap and for write-back (the same sandbox).
    crm = {  # Meltano reads an array or object setting's variable as JSON
        name.upper(): value if isinstance(value, str) else json.dumps(value)
        for name, value in client_settings(urls).items()
    }
    return base | {
        **{f"TAP_CRM_{name}": value for name, value in crm.items()},
        **{f"TARGET_HEALTH_{name}": value for name, value in crm.items()},
        "TAP_CRM_PII_KEYS": keys["TAP_CRM_PII_KEYS"],
        "TAP_CRM_PII_HMAC_KEYS": keys["TAP_CRM_PII_HMAC_KEYS"],
        "TARGET_HEALTH_DATABASE_URL": f"sqlite:///{(workdir / 'health.sqlite').resolve()}",
        "TARGET_HEALTH_USAGE_CSV": str((exports_dir(db) / "usage.csv").resolve()),
        "TARGET_HEALTH_AS_OF": WorldSpec().anchor.date().isoformat(),  # the world's "now"
        "MELTANO_DATABASE_URI": f"sqlite:///{(workdir / 'meltano.db').resolve()}",
        "UV_NATIVE_TLS": base.get("UV_NATIVE_TLS", "1"),
    }


def _meltano(env: dict[str, str], workdir: Path, *args: str) -> float:
    started = time.perf_counter()
    with open(workdir / "meltano.log", "ab") as log:
        code = subprocess.run(  # noqa: S603 - our own venv's meltano
            [MELTANO, *args], cwd=ROOT, env=env, stdout=log, stderr=log, check=False
        ).returncode
    if code:
        tail = (workdir / "meltano.log").read_text(errors="replace").splitlines()[-8:]
        raise SystemExit(f"meltano {' '.join(args)} failed ({code}):\n" + "\n".join(tail))
    return time.perf_counter() - started


def _report(store: Path, truth: list[dict[str, str]]) -> None:
    conn = sqlite3.connect(store)
    (counts,) = conn.execute("SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    run = json.loads(counts)
    entities = dict(conn.execute("SELECT entity, COUNT(*) FROM records GROUP BY 1").fetchall())
    print(
        f"  target-health stored {run['stored']:,} of {run['received']:,} records"
        f" ({run['quarantined']} quarantined): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(entities.items()))
    )
    wb = run.get("writeback") or {}
    if wb:
        print(
            f"  write-back plan {wb['plan_id']}: {wb.get('applied', 0):,} CRM records updated"
            f" ({', '.join(f'{k} {v}' for k, v in sorted(wb.get('by_crm', {}).items()))}) in"
            f" {sum(wb.get('calls', {}).values())} write calls, {len(wb.get('failed', []))} failed"
        )
    label = {f"ext:{row['external_id']}": row["label"] for row in truth}
    bands = ("healthy", "neutral", "at_risk", "critical")
    matrix: Counter[tuple[str, str]] = Counter()
    for key, band in conn.execute("SELECT account_key, band FROM scores"):
        matrix[(label.get(key, "?"), band or "unscored")] += 1
    print("\nHealth bands (columns) against the seed's ground truth (rows):")
    print(f"  {'':<11}" + "".join(f"{b:>10}" for b in bands))
    for lab in ("healthy", "declining", "at_risk", "churned"):
        print(f"  {lab:<11}" + "".join(f"{matrix[(lab, b)]:>10,}" for b in bands))
    metrics = {
        (n, lbl): json.loads(v)
        for n, lbl, v in conn.execute("SELECT name, label, value FROM metrics")
    }
    nps = next(v for (n, _), v in metrics.items() if n == "nps")
    print(f"\nNPS {nps['nps']} from {nps['responses']:,} responses (last 365 days)")
    for (name, period), v in sorted(metrics.items()):
        if name == "retention":
            print(
                f"  {period:<34} GRR {v['grr']:.1%}  NRR {v['nrr']:.1%}"
                f"  logo retention {v['logo_retention']:.1%}"
            )
    row = conn.execute(
        "SELECT account_key, score, band, segment, factors FROM scores WHERE band = 'critical'"
        " ORDER BY score, account_key LIMIT 1"
    ).fetchone()
    if row:
        key, score, band, segment, factors = row
        print(f"\nWhy {key} is {band} ({score}, segment {segment}):")
        for f in json.loads(factors):
            print(f"  {f['contribution']:+6.1f}  {f['text']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py demo", description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="accounts to seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("demo-data"))
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--no-serve", action="store_true", help="exit after showing the result")
    args = parser.parse_args(argv)

    workdir = args.dir.resolve()
    db = workdir / f"crm-{args.size}-{args.seed}.sqlite"
    if not db.exists():
        print(f"Seeding {args.size:,} accounts into {db} ...", flush=True)
        summary = seed(db, WorldSpec(size=args.size, seed=args.seed))
        print(f"  done in {summary['seconds']} s")
    with open(exports_dir(db) / "accounts.csv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    labels = Counter(row["label"] for row in truth)
    keys = _keys(workdir / "pii-keys.env")
    for stale in ("health.sqlite", "meltano.db"):  # a fresh pipeline for a fresh demo
        for path in workdir.glob(f"{stale}*"):
            path.unlink()

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
        env = _env(sandbox.urls, keys, workdir, db)
        _meltano(env, workdir, "install")
        print(
            "\nmeltano run tap-crm target-health (paced to each CRM's real rate limits) ...",
            flush=True,
        )
        before = _calls(sandbox)
        seconds = _meltano(env, workdir, "--environment", "dev", "run", "tap-crm", "target-health")
        calls = {v: n - before.get(v, 0) for v, n in _calls(sandbox).items()}
        print(
            f"  done in {seconds:.1f} s; API calls: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items()))
        )
        _report(workdir / "health.sqlite", truth)
        before = _calls(sandbox)
        seconds = _meltano(env, workdir, "--environment", "dev", "run", "tap-crm", "target-health")
        calls = {v: n - before.get(v, 0) for v, n in _calls(sandbox).items()}
        conn = sqlite3.connect(workdir / "health.sqlite")
        (counts,) = conn.execute(
            "SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        run = json.loads(counts)
        usage = run["streams"].get("usage", {}).get("received", 0)
        wb = run.get("writeback") or {}
        print(
            f"\nIncremental rerun from Meltano's state: {run['received'] - usage:,} CRM records"
            f" (and the usage file's {usage:,} rows again), {sum(calls.values())} API calls,"
            f" {seconds:.1f} s; write-back planned {wb.get('items', 0)} changes and made"
            f" {sum(wb.get('calls', {}).values())} write calls."
        )
        print(f"\nStore: {workdir / 'health.sqlite'}; logs: {workdir / 'meltano.log'}")
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
