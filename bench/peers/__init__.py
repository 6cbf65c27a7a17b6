"""Peer taps, measured against the same sandbox as tap-crm.

Each peer is installed from PyPI into its own venv under ``bench/.venvs/<name>`` (created on first
use, reused while its requirements stay the same) and runs as its own process. The peers hard-code
the vendors' hosts, so each starts through a small wrapper script in this package (run with the
peer venv's Python) that points the peer's base URL at the sandbox before handing over to the
peer's own entry point. None of the peers' code is in this repository.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
