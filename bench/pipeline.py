"""The whole pipeline beside a plain singer-sdk tap | target pair, on the same HubSpot records.

Three measurements against one sandbox process (rate limits off) serving the seeded database:

- ``plain singer-sdk pair``: bench/baseline's tap (RESTStream, SDK defaults) piped through a real
  OS pipe into its target (BatchSink, the SDK's jsonschema validation on, rows into SQLite);
- ``tap-crm | target-health``: our pair piped the same way, without Meltano: PII encrypted,
  stream and canonical validation, mapping, the store, scoring and a write-back plan (dry run);
- ``meltano run tap-crm target-health``: the same through Meltano's ``dev`` environment (its own
  system directory under the workdir, ``meltano install`` done before the clock starts), so the
  difference to the row above is Meltano's own cost (its start, the tap's discovery it runs
  every time, its message relay).

All three read companies, contacts, deals and tickets from HubSpot's v3 API. Ours also reads the
company associations (how deals and tickets find their account; the plain pair has no mapping
and skips them) and the archived records of each object (tap-crm's deletes): ``records`` counts
the four objects' records the target received, ``records_all`` everything it received, and
``records_per_s`` is ``records / seconds``. Seconds are end to end (first process started to
last exited), peak RSS per process (VmHWM sampled every 50 ms), ``cpu_s`` the CPU seconds each
process used (Meltano's include its tap's and target's) and ``records_per_cpu_s`` the records
per CPU second of the whole pipeline: on a shared machine it moves less than wall time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, PeakRss, api_calls, rss_mb, start_sandbox, stop, tap_config

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.seed import exports_dir
from crm_connectors.sandbox.world import WorldSpec

BASELINE = Path(__file__).resolve().parent / "baseline"
MELTANO = str(Path(sys.executable).parent / "meltano")
OBJECTS = ("companies", "contacts", "deals", "tickets")
#: What tap-crm reads for the pipeline: the four objects and the associations that tie deals
#: and tickets to their company (target-health maps them to the account).
TAP_CRM_STREAMS = (*(f"hubspot_{o}" for o in OBJECTS), "hubspot_associations")
TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]


def _write_secret(path: Path, data: dict[str, Any]) -> Path:
    """A config file only its owner may read (it holds the token and PII keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    return path


def _fresh(*paths: Path) -> None:
    for path in paths:
        for old in path.parent.glob(f"{path.name}*"):
            old.unlink()


def _wait(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for ``proc``: its exit code and the CPU seconds (user + system) it and the children
    it waited for used. CPU seconds hold up better than wall time when other work shares the
    cores."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _pipe(tap: list[str], target: list[str], workdir: Path, name: str) -> dict[str, Any]:
    """``tap | target`` through an OS pipe: seconds until both exit, each one's peak RSS and
    CPU seconds. A non-zero exit raises, naming the log holding both stderr streams."""
    log_path = workdir / f"{name}.log"
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        tap_proc = subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=log)
        assert tap_proc.stdout is not None
        target_proc = subprocess.Popen(
            target, stdin=tap_proc.stdout, stdout=subprocess.DEVNULL, stderr=log
        )
        tap_proc.stdout.close()  # the target holds the read end alone: it sees EOF, tap SIGPIPE
        tap_peak, target_peak = PeakRss(tap_proc.pid), PeakRss(target_proc.pid)
        (tap_status, tap_cpu), (target_status, target_cpu) = _wait(tap_proc), _wait(target_proc)
        rss = {"tap": tap_peak.stop(), "target": target_peak.stop()}
    seconds = time.perf_counter() - started
    if tap_status or target_status:
        raise RuntimeError(
            f"{name} failed (tap {tap_status}, target {target_status}); see {log_path}"
        )
    return {"seconds": seconds, "rss_mb": rss, "cpu_s": {"tap": tap_cpu, "target": target_cpu}}


class TreePeak:
    """Peak RSS of a process and of its descendants, per role: a descendant whose script (or
    executable) is named ``tap-crm`` or ``target-health`` is the tap or the target. Children are
    found by scanning /proc (no /proc/<pid>/task/*/children here) every ``scan`` seconds."""

    ROLES = {"tap-crm": "tap", "target-health": "target"}

    def __init__(self, pid: int, interval: float = 0.05, scan: float = 0.2) -> None:
        self.pid = pid
        self.peak: dict[str, float] = {"meltano": 0.0, "tap": 0.0, "target": 0.0}
        self._roles: dict[int, str] = {pid: "meltano"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval, scan), daemon=True)
        self._thread.start()

    def _children(self) -> None:
        parents = {self.pid} | {p for p, r in self._roles.items() if r == "meltano"}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in self._roles:
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid not in parents:
                    continue
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")[:2]
            except (OSError, ValueError, IndexError):
                continue
            names = {Path(a.decode(errors="replace")).name for a in argv}
            role = next((r for n, r in self.ROLES.items() if n in names), "meltano")
            self._roles[int(entry.name)] = role

    def _sample(self) -> None:
        for pid, role in list(self._roles.items()):
            value = rss_mb(pid)
            if value == value:  # not nan
                self.peak[role] = max(self.peak[role], value)

    def _run(self, interval: float, scan: float) -> None:
        last_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_scan >= scan:
                self._children()
                last_scan = time.monotonic()
            self._sample()
            self._stop.wait(interval)

    def stop(self) -> dict[str, float]:
        self._sample()
        self._stop.set()
        self._thread.join()
        return dict(self.peak)


# -- the plain pair --------------------------------------------------------------------------------


def plain_pair(urls: dict[str, str], workdir: Path) -> dict[str, Any]:
    out = workdir / "baseline.sqlite"
    _fresh(out)
    tap_cfg = _write_secret(
        workdir / "baseline-tap.json", {"access_token": TOKEN, "api_url": urls["hubspot"]}
    )
    target_cfg = _write_secret(workdir / "baseline-target.json", {"database": str(out)})
    run = _pipe(
        [sys.executable, str(BASELINE / "tap_baseline.py"), "--config", str(tap_cfg)],
        [sys.executable, str(BASELINE / "target_baseline.py"), "--config", str(target_cfg)],
        workdir,
        "baseline",
    )
    with sqlite3.connect(out) as conn:
        (records,) = conn.execute("SELECT COUNT(*) FROM records").fetchone()
    conn.close()
    return {"records": int(records), "records_all": int(records), **run}


# -- ours ------------------------------------------------------------------------------------------


def _ours_settings(
    urls: dict[str, str], store: Path, db: Path, usage_csv: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """tap-crm's and target-health's settings for one HubSpot run against the sandbox."""
    tap = tap_config("hubspot", urls)  # rate limits off: the pipeline, not HubSpot's limits
    target: dict[str, Any] = {
        "crms": ["hubspot"],
        "hubspot_base_url": urls["hubspot"],
        "hubspot_access_token": TOKEN,
        "database_url": f"sqlite:///{store.resolve()}",
        "as_of": WorldSpec().anchor.date().isoformat(),  # the seeded world's "now"
        "writeback": {"enabled": True, "dry_run": True},  # planned, not applied
    }
    if usage_csv:
        target["usage_csv"] = str((exports_dir(db) / "usage.csv").resolve())
    return tap, target


def _meltano_env(tap: dict[str, Any], target: dict[str, Any], workdir: Path) -> dict[str, str]:
    """The settings above as Meltano's environment variables, on top of meltano.yml's dev
    environment; Meltano's system directory and database in the workdir."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_CRM_", "TARGET_HEALTH_", "MELTANO_"))
    }

    def value(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    env = base | {f"TAP_CRM_{k.upper()}": value(v) for k, v in tap.items()}
    env |= {f"TARGET_HEALTH_{k.upper()}": value(v) for k, v in target.items()}
    return env | {
        "TAP_CRM__SELECT": json.dumps([f"{s}.*" for s in TAP_CRM_STREAMS]),
        "MELTANO_SYS_DIR_ROOT": str((workdir / "meltano-sys").resolve()),
        "MELTANO_DATABASE_URI": f"sqlite:///{(workdir / 'meltano.db').resolve()}",
        "UV_NATIVE_TLS": base.get("UV_NATIVE_TLS", "1"),
    }


def _meltano(env: dict[str, str], workdir: Path, *args: str, stdout: Any = None) -> None:
    log = workdir / "meltano.log"
    with open(log, "ab") as err:
        code = subprocess.run(
            [MELTANO, *args], cwd=ROOT, env=env, stdout=stdout or err, stderr=err, check=False
        ).returncode
    if code:
        raise RuntimeError(f"meltano {' '.join(args[:3])} failed ({code}); see {log}")


def _received(store: Path) -> tuple[int, int, dict[str, Any]]:
    """The four objects' records and all records target-health received in its last run."""
    with sqlite3.connect(store) as conn:
        (counts,) = conn.execute(
            "SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    conn.close()
    run = json.loads(counts)
    streams = run["streams"]
    four = sum(streams.get(f"hubspot_{o}", {}).get("received", 0) for o in OBJECTS)
    crm = sum(s["received"] for name, s in streams.items() if name != "usage")
    return four, crm, run


def _ours_row(store: Path, run: dict[str, Any]) -> dict[str, Any]:
    records, records_all, summary = _received(store)
    wb = summary.get("writeback") or {}
    if summary.get("quarantined"):
        print(f"bench: {summary['quarantined']} records quarantined", file=sys.stderr)
    return {
        "records": records,
        "records_all": records_all,
        "quarantined": summary.get("quarantined", 0),
        "accounts_scored": (summary.get("measured") or {}).get("accounts", 0),
        "writeback_planned": wb.get("items", 0),
        "writeback_dry_run": bool(wb.get("dry_run")),
        **run,
    }


def ours_piped(
    urls: dict[str, str], workdir: Path, db: Path, catalog: Path, usage_csv: bool
) -> dict[str, Any]:
    store = workdir / "health-piped.sqlite"
    _fresh(store)
    tap, target = _ours_settings(urls, store, db, usage_csv)
    tap_cfg = _write_secret(workdir / "tap-crm.json", tap)
    target_cfg = _write_secret(workdir / "target-health.json", target)
    run = _pipe(
        [sys.executable, "-m", "tap_crm.tap", "--config", str(tap_cfg), "--catalog", str(catalog)],
        [sys.executable, "-m", "target_health.target", "--config", str(target_cfg)],
        workdir,
        "ours-piped",
    )
    return _ours_row(store, run)


def setup_writeback(urls: dict[str, str], workdir: Path, db: Path) -> None:
    """``target-health setup``: the score fields write-back owns, created in the sandbox's
    HubSpot once (a dry run plans nothing without them), as a user does before the first run.
    Done before any clock starts, so every pipeline reads the same properties."""
    store = workdir / "setup.sqlite"
    _fresh(store)
    _, target = _ours_settings(urls, store, db, usage_csv=False)
    cfg = _write_secret(workdir / "target-health-setup.json", target)
    log = workdir / "setup.log"
    with open(log, "ab") as out:
        code = subprocess.run(
            [sys.executable, "-m", "target_health.target", "setup", "--config", str(cfg)],
            stdout=out, stderr=out, check=False,
        ).returncode  # fmt: skip
    if code:
        raise RuntimeError(f"target-health setup failed ({code}); see {log}")


def prepare_meltano(
    urls: dict[str, str], workdir: Path, db: Path, usage_csv: bool
) -> tuple[dict[str, str], Path]:
    """``meltano install`` into the workdir's system directory and the catalog Meltano hands
    the tap (the piped run uses it: the same selection): done before any clock starts."""
    store = workdir / "health-meltano.sqlite"
    _fresh(store, workdir / "meltano.db")
    tap, target = _ours_settings(urls, store, db, usage_csv)
    env = _meltano_env(tap, target, workdir)
    _meltano(env, workdir, "install")
    catalog = workdir / "tap-crm-catalog.json"
    with open(catalog, "wb") as out:
        _meltano(env, workdir, "--environment", "dev", "invoke", "--dump=catalog", "tap-crm",
                 stdout=out)  # fmt: skip
    return env, catalog


def ours_meltano(env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """``meltano run`` alone timed, with the peak RSS of Meltano, the tap and the target."""
    log = workdir / "meltano.log"
    started = time.perf_counter()
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [MELTANO, "--environment", "dev", "run", "tap-crm", "target-health"],
            cwd=ROOT, env=env, stdout=err, stderr=err,
        )  # fmt: skip
        peak = TreePeak(proc.pid)
        status, cpu = _wait(proc)  # Meltano waits for the tap and the target: theirs included
        rss = peak.stop()
    seconds = time.perf_counter() - started
    if status:
        raise RuntimeError(f"meltano run failed ({status}); see {log}")
    row = {"seconds": seconds, "rss_mb": rss, "cpu_s": {"meltano, tap and target": cpu}}
    return _ours_row(workdir / "health-meltano.sqlite", row)


# -- all three -------------------------------------------------------------------------------------


def measure_pipelines(db: Path, workdir: Path, *, usage_csv: bool = False) -> list[dict[str, Any]]:
    """The plain pair, our pair piped and our pair under ``meltano run``, on the sandbox serving
    ``db`` (rate limits off). ``usage_csv`` adds the seed's product-usage file to ours (more
    work for ours alone: its rows are not counted as records)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox, urls = start_sandbox(db, workdir)
    rows = []
    try:
        setup_writeback(urls, workdir, db)
        env, catalog = prepare_meltano(urls, workdir, db, usage_csv)
        pipelines: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("plain singer-sdk tap | target", lambda: plain_pair(urls, workdir)),
            ("tap-crm | target-health", lambda: ours_piped(urls, workdir, db, catalog, usage_csv)),
            ("meltano run tap-crm target-health", lambda: ours_meltano(env, workdir)),
        ]
        for name, measure in pipelines:
            before = api_calls(urls["admin"]).get("hubspot", 0)
            row = measure()
            calls = api_calls(urls["admin"]).get("hubspot", 0) - before
            cpu = sum(row["cpu_s"].values())
            rows.append({
                "pipeline": name,
                **row,
                "records_per_cpu_s": row["records"] / cpu if cpu else float("nan"),
                "records_per_s": row["records"] / row["seconds"],
                "records_all_per_s": row["records_all"] / row["seconds"],
                "api_calls": calls,
            })  # fmt: skip
    finally:
        stop(sandbox)
    return rows
