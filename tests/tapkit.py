"""Helpers for tap-crm tests: configs pointing at a sandbox, and the tap run as a real process.

``run_tap`` starts ``python -m tap_crm.tap`` (the installed entry point's module) with a config
file, and optionally a state and a catalog, and parses what it wrote: Singer messages on stdout,
logs on stderr. ``start_tap`` gives the running process for kill -9 tests.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.emulators import client_settings, vendors
from crm_connectors.sandbox.world import WorldSpec

ROOT = Path(__file__).resolve().parents[1]
#: The venv's meltano (a dev extra), None when it is not installed.
MELTANO = shutil.which("meltano", path=str(Path(sys.executable).parent))
#: The PostgreSQL the tests use where one answers (CI's and this machine's: trust auth).
PG_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_answers() -> str:
    """Why PostgreSQL cannot be used ("" when it answers)."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return ""
    except Exception as exc:  # any failure to connect: no PostgreSQL here
        return f"no PostgreSQL at {PG_URL} ({type(exc).__name__})"


@contextmanager
def fresh_store(kind: str, work: Path) -> Iterator[str]:
    """The URL of an empty store: a new SQLite file under ``work``, or a new PostgreSQL schema
    (dropped after; check postgres_answers() first)."""
    if kind == "sqlite":
        yield f"sqlite:///{work / f'health-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def run_meltano(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``meltano ARGS`` in the project (this repository's, or the one at ``cwd``), with ``env``
    over this process's environment minus every plugin and Meltano variable (so only what the
    test sets reaches the plugins)."""
    assert MELTANO is not None
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_CRM_", "TARGET_HEALTH_", "CRM_PII_", "MELTANO_"))
    }
    # uv (meltano.yml's venv backend) trusts the system's CA store, as pip does here.
    base.setdefault("UV_NATIVE_TLS", "1")
    return subprocess.run(
        [MELTANO, *args],
        cwd=cwd,
        env=base | dict(env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: Fixed test keys (never used outside tests): key id "t1" (AES-256) and "h1" (HMAC).
ENC_KEY = base64.b64encode(bytes(range(32))).decode()
HMAC_KEY = base64.b64encode(bytes(range(100, 132))).decode()
PII_KEYS = f"t1:{ENC_KEY}"
PII_HMAC_KEYS = f"h1:{HMAC_KEY}"


#: Where each CRM's owned-field writes go (the sandbox counts matches of a zero-delay "slow").
WRITE_ROUTES = {
    "hubspot": ("POST", "/crm/v3/objects/companies/batch/update"),
    "salesforce": ("PATCH", "/services/data/*/composite/sobjects"),
    "intercom": ("PUT", "/companies/*"),
}
#: Where each CRM's follow-up creates go.
CREATE_ROUTES = {
    "hubspot": ("POST", "/crm/v3/objects/tasks"),
    "salesforce": ("POST", "/services/data/*/sobjects/Task"),
    "intercom": ("POST", "/tags"),
}


def crm_values(
    config: Mapping[str, Any], ids: Mapping[str, list[str]]
) -> dict[tuple[str, str], Any]:
    """What each CRM holds now in target-health's owned fields, per (crm, record id) of ``ids``,
    read back through the write-back's own writers."""
    from target_health.writeback.crm import writers

    out: dict[tuple[str, str], Any] = {}
    for writer in writers(dict(config)):
        with writer:
            for rid, values in writer.read(ids.get(writer.crm, [])).items():
                out[(writer.crm, rid)] = values
    return out


def run_target(
    workdir: Path, messages: list[dict[str, Any]], **config: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m target_health.target`` on ``messages``, its store ``workdir/health.sqlite``
    unless ``database_url`` says otherwise, measuring as of the sandbox world's "now"."""
    workdir.mkdir(parents=True, exist_ok=True)
    config.setdefault("database_url", f"sqlite:///{workdir / 'health.sqlite'}")
    config.setdefault("as_of", str(WorldSpec().anchor.date()))
    (workdir / "config.json").write_text(json.dumps(config))
    lines = "".join(json.dumps(m) + "\n" for m in messages)
    return subprocess.run(
        [sys.executable, "-m", "target_health.target", "--config", str(workdir / "config.json")],
        input=lines, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def tap_config(
    sandbox: Sandbox, crms: Iterable[str] | None = None, *, profile: str = "seeded", **extra: Any
) -> dict[str, Any]:
    """A config reading ``crms`` (default: every CRM the sandbox serves) with the sandbox's
    credentials and its emulators' client settings (no settle delay: the sandbox indexes at
    once) with the field mapping of its world ``profile``, and the test PII keys."""
    served = [c for c in vendors() if c in sandbox.urls]  # (urls also holds the admin API)
    chosen = tuple(c for c in served if crms is None or c in set(crms))
    config: dict[str, Any] = {"crms": list(chosen)}
    config |= {"pii_keys": PII_KEYS, "pii_hmac_keys": PII_HMAC_KEYS}
    return config | client_settings(sandbox.urls, chosen, profile) | extra


@dataclass
class TapRun:
    returncode: int
    messages: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """RECORD data by stream, in output order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for m in self.messages:
            if m["type"] == "RECORD":
                out.setdefault(m["stream"], []).append(m["record"])
        return out

    @property
    def counts(self) -> Counter[str]:
        return Counter(m["stream"] for m in self.messages if m["type"] == "RECORD")

    @property
    def schemas(self) -> dict[str, dict[str, Any]]:
        return {m["stream"]: m["schema"] for m in self.messages if m["type"] == "SCHEMA"}

    @property
    def last_state(self) -> dict[str, Any] | None:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else None


def _write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def tap_command(
    workdir: Path,
    config: Mapping[str, Any],
    *,
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    args: Iterable[str] = (),
) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "tap_crm.tap",
        "--config",
        str(_write(workdir / "config.json", config)),
    ]
    if state is not None:
        cmd += ["--state", str(_write(workdir / "state.json", state))]
    if catalog is not None:
        cmd += ["--catalog", str(_write(workdir / "catalog.json", catalog))]
    return [*cmd, *args]


def tap_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any CRM_PII_* / TAP_CRM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_PII_", "TAP_CRM_"))}
    return env | dict(extra or {})


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def run_tap(
    workdir: Path,
    config: Mapping[str, Any],
    *,
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> TapRun:
    cmd = tap_command(workdir, config, state=state, catalog=catalog, args=args)
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=tap_env(env), timeout=timeout, check=False
    )
    messages = parse_messages(done.stdout) if not args else []
    return TapRun(done.returncode, messages, done.stdout, done.stderr)


def start_tap(
    workdir: Path,
    config: Mapping[str, Any],
    *,
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    stderr_path: Path | None = None,
) -> subprocess.Popen[str]:
    """The tap as a running process with stdout piped (for kill -9 tests)."""
    cmd = tap_command(workdir, config, state=state, catalog=catalog)
    with open(stderr_path or workdir / "stderr.log", "w") as err:  # the child keeps its own fd
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=tap_env())


def discover(workdir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    run = run_tap(workdir, config, args=["--discover"])
    assert run.returncode == 0, run.stderr[-3000:]
    catalog: dict[str, Any] = json.loads(run.stdout)
    return catalog


def select(catalog: dict[str, Any], streams: Iterable[str]) -> dict[str, Any]:
    """``catalog`` with exactly ``streams`` selected (stream-level metadata)."""
    wanted = set(streams)
    unknown = wanted - {s["tap_stream_id"] for s in catalog["streams"]}
    assert not unknown, f"no such streams: {sorted(unknown)}"
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in wanted
    return catalog


@dataclass
class Ids:
    """Record ids per stream, with how often each was emitted."""

    seen: dict[str, Counter[str]] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)

    def add(self, run: TapRun | list[dict[str, Any]]) -> Ids:
        """Count the records of ``run`` by their primary key (from the SCHEMA messages)."""
        messages = run.messages if isinstance(run, TapRun) else run
        for m in messages:
            if m["type"] == "SCHEMA":
                self.keys[m["stream"]] = list(m["key_properties"])
            elif m["type"] == "RECORD":
                rec = m["record"]
                key = ":".join(str(rec[k]) for k in self.keys[m["stream"]])
                self.seen.setdefault(m["stream"], Counter())[key] += 1
        return self

    def sets(self) -> dict[str, set[str]]:
        return {stream: set(c) for stream, c in self.seen.items()}
