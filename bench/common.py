"""What every benchmark shares: the sandbox as its own process, Singer processes measured the same
way (records, seconds, peak RSS sampled while they run), and the sandbox's per-vendor call counts.

Peak RSS is read from /proc/<pid>/status (VmHWM) every 50 ms while the process runs: wait4's
ru_maxrss would include the bench process's own peak, inherited across exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors"))


def rss_mb(pid: int) -> float:
    """Peak resident set size of a live process, in MB (nan once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class PeakRss:
    """Samples a process's VmHWM every ``interval`` seconds on a thread until it exits."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            if value == value:  # not nan
                self.peak = max(self.peak, value)
            self._stop.wait(interval)

    def stop(self) -> float:
        value = rss_mb(self.pid)
        if value == value:
            self.peak = max(self.peak, value)
        self._stop.set()
        self._thread.join()
        return self.peak


def start_sandbox(
    db: Path, workdir: Path, *, rate_limits: bool = False, options: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Serve ``db`` from a sandbox process on free ports; returns it and its URLs (one per vendor
    and ``admin``). ``options`` are ``--option`` values such as ``hubspot.burst_limit=100``."""
    ready = workdir / f"ready-{os.getpid()}-{time.time_ns()}.json"
    cmd = [sys.executable, "-m", "crm_connectors.sandbox.cli", "serve", "--db", str(db),
           "--port", "0", "--ready-file", str(ready)]  # fmt: skip
    if not rate_limits:
        cmd.append("--no-rate-limits")
    for option in options:
        cmd += ["--option", option]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.1)
    time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def api_calls(admin: str) -> dict[str, int]:
    """Calls the sandbox has answered so far, per vendor."""
    body = httpx.get(f"{admin}/_sandbox/stats", timeout=30).json()
    return {v: int(s["calls"]) for v, s in body["vendors"].items()}


def run_singer(
    cmd: Sequence[str],
    log: Path,
    *,
    save: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stop_after: int | None = None,
    rss_at: Sequence[int] = (),
) -> dict[str, Any]:
    """Run a Singer tap, reading its stdout as a target would: RECORD messages counted, the last
    STATE kept, everything optionally saved to ``save``. Returns records, seconds, state, rss_mb
    and ``rss_at`` (peak RSS when the n-th record arrived, for each n of ``rss_at`` reached).
    With ``stop_after``, the tap is stopped once that many records arrived (the seconds are up to
    that record). A non-zero exit raises, naming the log that holds its stderr."""
    records = 0
    last_state = None
    marks = sorted(rss_at)
    at: dict[int, float] = {}
    stopped = False
    started = time.perf_counter()
    with open(log, "ab") as err, open(save or os.devnull, "wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd, bufsize=1 << 20
        )
        peak = PeakRss(proc.pid)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            # Every Singer library writes "type" first, with or without a space after the colon.
            head = line[:20].replace(b" ", b"")
            if head.startswith(b'{"type":"RECORD"'):
                records += 1
                if marks and records == marks[0]:
                    at[marks.pop(0)] = max(peak.peak, rss_mb(proc.pid))
                if records == stop_after:
                    seconds = time.perf_counter() - started
                    stopped = True
                    break
            elif head.startswith(b'{"type":"STATE"'):
                last_state = json.loads(line)["value"]
        rss = peak.stop()
        if stopped:  # measured: no need for a clean end (it would block on the unread pipe)
            proc.kill()
        proc.stdout.close()
        status = proc.wait()
    if not stopped:
        seconds = time.perf_counter() - started
        if status:
            cmd_text = f"{Path(cmd[0]).name} {' '.join(cmd[1:3])}"
            raise RuntimeError(f"{cmd_text} failed ({status}); see {log}")
    return {"records": records, "seconds": seconds, "state": last_state, "rss_mb": rss,
            "rss_at": at}  # fmt: skip


def run_measured(cmd: Sequence[str], log: Path, **kwargs: Any) -> dict[str, Any]:
    """Run any process to its end: seconds and peak RSS. A non-zero exit raises."""
    started = time.perf_counter()
    with open(log, "ab") as err:
        proc = subprocess.Popen(list(cmd), stdout=err, stderr=err, **kwargs)
        peak = PeakRss(proc.pid)
        status = proc.wait()
        rss = peak.stop()
    if status:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({status}); see {log}")
    return {"seconds": time.perf_counter() - started, "rss_mb": rss}


# -- tap-crm -------------------------------------------------------------------------------------

from crm_connectors.pii import new_key  # noqa: E402
from crm_connectors.sandbox.emulators import client_settings  # noqa: E402

#: The CRMs the bench compares (each has peer taps in bench/peers).
BENCH_CRMS = ("hubspot", "salesforce", "intercom")
#: Settings over each emulator's client settings (rate limits are off in the bench's sandbox:
#: the tap's own search pacing for HubSpot is lifted too, so the figures measure the tap, not
#: HubSpot's 5/s).
BENCH_SETTINGS: dict[str, dict[str, Any]] = {
    "hubspot": {"hubspot_search_requests_per_second": 10_000},
}
_PII_KEYS = {"pii_keys": f"b1:{new_key()}", "pii_hmac_keys": f"h1:{new_key()}"}


def crm_settings(
    urls: dict[str, str], crms: Sequence[str] = BENCH_CRMS, profile: str = "seeded"
) -> dict[str, Any]:
    """The connector settings of ``crms`` for the sandbox at ``urls`` (its credentials, the
    field mapping of its world ``profile``)."""
    out = client_settings(urls, tuple(crms), profile)
    for crm in crms:
        out |= BENCH_SETTINGS.get(crm, {})
    return out


def tap_config(
    crm: str, urls: dict[str, str], profile: str = "seeded", **overrides: Any
) -> dict[str, Any]:
    """tap-crm's config for one CRM of the sandbox at ``urls`` (a world of ``profile``), PII
    encrypted (one key pair per bench run)."""
    return {"crms": [crm], **_PII_KEYS, **crm_settings(urls, (crm,), profile), **overrides}


def tap_command(
    config: dict[str, Any],
    workdir: Path,
    *,
    state: Any = None,
    streams: Sequence[str] | None = None,
    name: str = "tap",
) -> list[str]:
    """The command line of one tap-crm sync: config (and state) written under ``workdir``;
    with ``streams``, a catalog from discovery with only those streams selected."""
    cfg = workdir / f"{name}-config.json"
    cfg.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "tap_crm.tap", "--config", str(cfg)]
    if state is not None:
        (workdir / f"{name}-state.json").write_text(json.dumps(state))
        cmd += ["--state", str(workdir / f"{name}-state.json")]
    if streams is not None:
        found = subprocess.run([*cmd[:5], "--discover"], capture_output=True, check=True)
        catalog = json.loads(found.stdout)
        for entry in catalog["streams"]:
            for meta in entry["metadata"]:
                if meta["breadcrumb"] == []:
                    meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
        (workdir / f"{name}-catalog.json").write_text(json.dumps(catalog))
        cmd += ["--catalog", str(workdir / f"{name}-catalog.json")]
    return cmd
