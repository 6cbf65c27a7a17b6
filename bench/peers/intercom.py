"""singer-io tap-intercom (PyPI) on the contacts stream, against the sandbox.

The tap reads contacts with ``POST /contacts/search`` (``updated_at`` from the start date,
ascending, 150 a page) after one ``GET /tags`` to check its token. Its discovery reads the
schemas it ships, without a call. The stream is selected as in a user's catalog: the contacts
entry and every field, from a start date before any record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

from . import WRAPPERS, Peer

STREAM = "contacts"
START_DATE = "2000-01-01T00:00:00Z"


def select(catalog: dict[str, Any], stream: str) -> dict[str, Any]:
    """The catalog with only ``stream`` selected, every field with it."""
    entries = [e for e in catalog["streams"] if e["tap_stream_id"] == stream]
    if not entries:
        raise RuntimeError(f"tap-intercom discovery found no {stream} stream")
    entry = entries[0]
    for item in entry["metadata"]:
        if item["metadata"].get("inclusion") != "unsupported":
            item["metadata"]["selected"] = True
    return {"streams": [entry]}


def prepare(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    config = workdir / "tap-intercom-config.json"
    config.write_text(
        json.dumps({
            "access_token": DEFAULT_CREDENTIALS["intercom"]["access_token"],
            "start_date": START_DATE,
            "user_agent": "crm-health-sync bench",
        })
    )  # fmt: skip
    base = [str(python), "-I", str(WRAPPERS / "intercom_tap.py"), urls["intercom"]]
    with open(workdir / "tap-intercom-discover.log", "ab") as log:
        found = subprocess.run(
            [*base, "--config", str(config), "--discover"], stdout=subprocess.PIPE, stderr=log
        )
    if found.returncode:
        raise RuntimeError(f"tap-intercom discovery failed; see {log.name}")
    catalog = workdir / "tap-intercom-catalog.json"
    catalog.write_text(json.dumps(select(json.loads(found.stdout), STREAM)))
    return [*base, "--config", str(config), "--catalog", str(catalog)]


PEERS: list[Peer] = [
    Peer(
        name="singer-io tap-intercom",
        venv="tap-intercom",
        requirements=("tap-intercom==2.2.5",),
        stream=STREAM,
        crm="intercom",
        prepare=prepare,
    )
]
