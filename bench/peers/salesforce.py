"""singer-io tap-salesforce (PyPI) on the Account stream, against the sandbox.

It runs through the REST API (``api_type`` "REST": SOQL over ``queryAll``, following
``nextRecordsUrl``). Its Bulk path needs the XML Bulk API v1 (``/services/async``), which the
sandbox does not serve (it serves Bulk API 2.0), so Bulk is not measured.

The stream is selected as in a user's catalog: the Account entry and every field the discovery
offers (all but the ``unsupported`` ones), replicated incrementally on the key discovery proposes
(SystemModstamp), from a start date before any record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

from . import WRAPPERS, Peer

STREAM = "Account"
START_DATE = "2000-01-01T00:00:00Z"


def select(catalog: dict[str, Any], stream: str) -> dict[str, Any]:
    """The catalog with only ``stream`` selected, every supported field with it."""
    entries = [e for e in catalog["streams"] if e["tap_stream_id"] == stream]
    if not entries:
        raise RuntimeError(f"tap-salesforce discovery found no {stream} stream")
    entry = entries[0]
    for item in entry["metadata"]:
        meta = item["metadata"]
        if not item["breadcrumb"]:
            meta["selected"] = True
            keys = meta.get("valid-replication-keys")
            if keys:
                meta["replication-method"] = "INCREMENTAL"
                meta["replication-key"] = keys[0]
            else:
                meta["replication-method"] = "FULL_TABLE"
        elif meta.get("inclusion") != "unsupported":
            meta["selected"] = True
    return {"streams": [entry]}


def prepare(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    creds = DEFAULT_CREDENTIALS["salesforce"]
    config = workdir / "tap-salesforce-config.json"
    config.write_text(
        json.dumps({
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
            "start_date": START_DATE,
            "api_type": "REST",
            "is_sandbox": False,
        })
    )  # fmt: skip
    base = [str(python), "-I", str(WRAPPERS / "salesforce_tap.py"), urls["salesforce"]]
    with open(workdir / "tap-salesforce-discover.log", "ab") as log:
        found = subprocess.run(
            [*base, "--config", str(config), "--discover"], stdout=subprocess.PIPE, stderr=log
        )
    if found.returncode:
        raise RuntimeError(f"tap-salesforce discovery failed; see {log.name}")
    properties = workdir / "tap-salesforce-properties.json"
    properties.write_text(json.dumps(select(json.loads(found.stdout), STREAM)))
    return [*base, "--config", str(config), "--properties", str(properties)]


PEERS: list[Peer] = [
    Peer(
        name="singer-io tap-salesforce",
        venv="tap-salesforce",
        requirements=("tap-salesforce==2.8.1",),
        stream=STREAM,
        crm="salesforce",
        prepare=prepare,
    )
]
