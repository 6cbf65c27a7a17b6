#!/usr/bin/env python3
"""One entry point for a fresh clone: needs nothing but Python 3.10+.

    python3 dev.py demo      seed the CRM sandbox, start it, and show what it serves
    python3 dev.py test      lint, type-check and run the test suite
    python3 dev.py bench     run the benchmarks in bench/ and print their table
    python3 dev.py reliability   faults, kill -9, concurrent runs, malformed input and PII at
                             length; writes tests/RELIABILITY.md (--short: the form CI runs)

Each command first makes sure `.venv/` exists and holds this project installed in editable mode
with its development extras, and the CRM sandbox (sandbox/); it reinstalls only when either
pyproject.toml has changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed-from"


def _ensure_env() -> None:
    digest = hashlib.sha256(
        b"".join((ROOT / p).read_bytes() for p in ("pyproject.toml", "sandbox/pyproject.toml"))
    ).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing the project and its dev extras into .venv", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # The plugins with their development extras, then the sandbox (its own distribution). The two
    # share the package crm_connectors; the sandbox's "compat" editable install puts the
    # connectors folder on sys.path, so the package is one folder of sources (two of setuptools'
    # default import hooks would each claim the package for itself).
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    subprocess.run(
        [*pip, "--config-settings", "editable_mode=compat", "-e", str(ROOT / "sandbox")],
        check=True,
    )
    STAMP.write_text(digest)


def _run(*cmd: str) -> int:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    # Meltano builds plugin venvs with uv (meltano.yml): let it trust the system's CA store,
    # as pip does, so that a proxy's or company's CA works for both.
    env.setdefault("UV_NATIVE_TLS", "1")
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    _ensure_env()
    if command == "demo":
        return _run(str(PY), "-m", "crm_connectors.sandbox.demo", *rest)
    if command == "test":
        for step in (
            (str(PY), "-m", "ruff", "check", "."),
            (str(PY), "-m", "ruff", "format", "--check", "."),
            (str(PY), "-m", "mypy"),
        ):
            code = _run(*step)
            if code:
                print(f"dev.py: {' '.join(step[2:])} failed", file=sys.stderr)
                return code
        return _run(str(PY), "-m", "pytest", *rest)
    if command == "bench":
        return _run(str(PY), "bench/run.py", *rest)
    if command == "reliability":
        return _run(str(PY), "tests/reliability.py", *rest)
    print(f"dev.py: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
