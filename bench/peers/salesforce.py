"""singer-io tap-salesforce (PyPI) on the Account stream, against the sandbox.

It runs through the REST API (``api_type`` "REST": SOQL over ``queryAll``, following
``nextRecordsUrl``). Its Bulk path needs the XML Bulk API v1 (``/services/async``), which the
sandbox does not serve (it serves Bulk API 2.0), so Bulk is not measured.

The stream is selected as in a user's catalog: the Account entry and every field the discovery
offers (all but the ``unsupported`` ones), replicated incrementally on the key discovery proposes
(SystemModstamp), from a start date before any record.
"""

from __future__ import annotations

from pathlib import Path

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

from . import WRAPPERS, Peer, discover, select_only, write_json

STREAM = "Account"
START_DATE = "2000-01-01T00:00:00Z"


def prepare(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    creds = DEFAULT_CREDENTIALS["salesforce"]
    config = write_json(
        workdir / "tap-salesforce-config.json",
        {
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
            "start_date": START_DATE,
            "api_type": "REST",
            "is_sandbox": False,
        },
    )
    tap = [str(python), "-I", str(WRAPPERS / "salesforce_tap.py"), urls["salesforce"]]
    tap += ["--config", str(config)]
    properties = select_only(
        discover(tap, workdir, "tap-salesforce"), STREAM, "tap-salesforce", incremental=True
    )
    path = write_json(workdir / "tap-salesforce-properties.json", properties)
    return [*tap, "--properties", str(path)]


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
