"""Peer taps, measured against the same sandbox as tap-crm.

Each peer is installed from PyPI into its own venv under ``bench/.venvs/<name>`` (created on first
use, reused while its requirements stay the same) and runs as its own process. The peers hard-code
the vendors' hosts, so each starts through a small wrapper script in this package (run with the
peer venv's Python) that points the peer's base URL at the sandbox before handing over to the
peer's own entry point. None of the peers' code is in this repository.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENVS = Path(__file__).resolve().parent.parent / ".venvs"
WRAPPERS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Peer:
    name: str  # its venv's name and the table's label, e.g. "singer-io tap-hubspot"
    venv: str
    requirements: tuple[str, ...]  # pinned PyPI requirements
    stream: str  # the one stream the bench selects
    crm: str
    #: (python, sandbox urls, workdir) -> the command line that runs one sync of ``stream``
    #: (config, catalog/properties files written under workdir; discovery done if needed).
    prepare: Callable[[Path, dict[str, str], Path], list[str]]


def ensure_venv(name: str, requirements: tuple[str, ...]) -> Path:
    """The Python of venv ``name`` with ``requirements`` installed (from PyPI, once)."""
    home = VENVS / name
    python = home / "bin" / "python"
    marker = home / ".requirements"
    wanted = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"bench: installing {' '.join(requirements)} into {home}", file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )
    marker.write_text(wanted)
    return python


def discover(cmd: list[str], workdir: Path, name: str) -> dict[str, Any]:
    """The catalog a peer's ``cmd --discover`` prints (its stderr in ``<name>-discover.log``)."""
    with open(workdir / f"{name}-discover.log", "ab") as log:
        out = subprocess.run([*cmd, "--discover"], stdout=subprocess.PIPE, stderr=log, check=False)
    if out.returncode:
        raise RuntimeError(f"{name} discovery failed ({out.returncode}); see {log.name}")
    catalog: dict[str, Any] = json.loads(out.stdout)
    return catalog


def write_json(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(json.dumps(body))
    return path


def select_only(
    catalog: dict[str, Any], stream: str, name: str, *, incremental: bool = False
) -> dict[str, Any]:
    """``catalog`` with only ``stream``, selected with every field it supports, as a user selects
    it; with ``incremental``, replicated on the first key discovery proposes (taps that leave the
    choice to the catalog, like tap-salesforce)."""
    entries = [e for e in catalog["streams"] if e["tap_stream_id"] == stream]
    if len(entries) != 1:
        found = [e["tap_stream_id"] for e in catalog["streams"]]
        raise RuntimeError(f"{name} discovery found {found}, not one {stream!r} stream")
    entry = entries[0]
    for item in entry["metadata"]:
        meta = item["metadata"]
        if not item["breadcrumb"]:
            meta["selected"] = True
            if incremental:
                keys = meta.get("valid-replication-keys")
                meta["replication-method"] = "INCREMENTAL" if keys else "FULL_TABLE"
                if keys:
                    meta["replication-key"] = keys[0]
        elif meta.get("inclusion") != "unsupported":
            meta["selected"] = True
    return {**catalog, "streams": [entry]}
