"""An incremental rerun after 1% of the records change, against the full sync before it.

For each CRM: a full sync of every stream (its STATE kept), then 1% of the records of every CRM
object stream (every 100th live record of the full sync's output) is edited through the vendor's
own API, as CRM users and integrations would (HubSpot ``batch/update``, Salesforce ``composite/
sobjects``, Intercom ``PUT`` per record: each emulator's KitHooks.edit), then tap-crm runs
again from the saved STATE. Reported: records and API calls of both runs (the edits' own calls
are not counted), seconds, and the rerun's calls as a share of the full sync's, with the routes
the rerun called.

Both runs get a catalog from discovery with every stream selected, as Meltano passes its cached
catalog on every run: the field types discovery wrote into it spare each run the metadata calls
(HubSpot properties, Salesforce describe, Intercom data attributes). Discovery's own calls
(made once, when Meltano has no cached catalog) are reported apart, in neither run's count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from common import (
    api_calls,
    run_singer,
    start_sandbox,
    stop,
    tap_command,
    tap_config,
)

from crm_connectors.hubspot.resources import OBJECTS as HUBSPOT_OBJECTS
from crm_connectors.salesforce.resources import OBJECTS as SALESFORCE_OBJECTS
from crm_connectors.sandbox.emulators import emulators

#: Per CRM: the streams whose records are edited, and each record's id key. The edits go
#: through the vendor's own API (the emulator's conformance-kit hook, KitHooks.edit).
EDITED: dict[str, dict[str, str]] = {
    "hubspot": {
        "hubspot_companies": "id",
        "hubspot_contacts": "id",
        "hubspot_deals": "id",
        "hubspot_tickets": "id",
    },
    "salesforce": {
        "salesforce_Account": "Id",
        "salesforce_Contact": "Id",
        "salesforce_Opportunity": "Id",
        "salesforce_Case": "Id",
    },
    "intercom": {"intercom_contacts": "id", "intercom_companies": "id"},
}


#: Every stream of each CRM (the bench's sandbox has no extra Salesforce objects).
STREAMS: dict[str, list[str]] = {
    "hubspot": [
        *(f"hubspot_{o}" for o in HUBSPOT_OBJECTS),
        "hubspot_owners",
        "hubspot_associations",
    ],
    "salesforce": [f"salesforce_{o}" for o in (*SALESFORCE_OBJECTS, "NPS_Response__c")],
    "intercom": [
        f"intercom_{o}" for o in ("contacts", "companies", "conversations", "admins", "tags")
    ],
}


def _with_catalog(config: dict[str, Any], workdir: Path, crm: str, state: Any = None) -> list[str]:
    """tap-crm's command with a catalog from discovery selecting every stream of ``crm``;
    raises if discovery found a stream :data:`STREAMS` does not list (it would go unread)."""
    cmd = tap_command(config, workdir, state=state, streams=STREAMS[crm])
    catalog = json.loads(Path(cmd[cmd.index("--catalog") + 1]).read_text())
    missed = [
        e["tap_stream_id"] for e in catalog["streams"] if e["tap_stream_id"] not in STREAMS[crm]
    ]
    if missed:
        raise RuntimeError(f"bench/incremental.py: add {', '.join(missed)} to STREAMS")
    return cmd


def _sample(output: Path, crm: str, share: int) -> dict[str, list[str]]:
    """Every ``share``-th live record's id per edited stream of a saved tap output."""
    streams = EDITED[crm]
    seen: dict[str, int] = {s: 0 for s in streams}
    picked: dict[str, list[str]] = {s: [] for s in streams}
    with output.open("rb") as lines:
        for line in lines:
            if not line.startswith(b'{"type":"RECORD"'):
                continue
            msg = json.loads(line)
            stream = msg["stream"]
            record = msg["record"]
            if stream not in streams or record.get("_sdc_deleted_at"):
                continue
            seen[stream] += 1
            if seen[stream] % share == 0:
                picked[stream].append(str(record[streams[stream]]))
    return picked


def _edit(crm: str, urls: dict[str, str], picked: dict[str, list[str]]) -> int:
    """Edit the picked records through the CRM's API; returns how many were edited."""
    emulator = emulators()[crm]
    assert emulator.kit is not None
    edited = 0
    for stream, ids in picked.items():
        if ids and emulator.kit.edit(urls[crm], emulator.credentials, stream, ids):
            edited += len(ids)
    return edited


def _routes(admin: str, vendor: str) -> dict[str, int]:
    body = httpx.get(f"{admin}/_sandbox/stats", timeout=30).json()
    routes = body["vendors"].get(vendor, {}).get("routes", {})
    return {route: int(info["calls"]) for route, info in routes.items()}


def measure_incremental(db: Path, workdir: Path, share: int = 100) -> list[dict[str, Any]]:
    """Full sync, 1-in-``share`` edits, incremental rerun, per CRM, on a copy-free sandbox of
    ``db`` (the edits change ``db``: give it a database no later step reuses unchanged)."""
    proc, urls = start_sandbox(db, workdir)
    rows = []
    try:
        for crm in EDITED:
            config = tap_config(crm, urls)
            output = workdir / f"incremental-{crm}.jsonl"
            started = api_calls(urls["admin"]).get(crm, 0)
            cmd = _with_catalog(config, workdir, crm)
            before = api_calls(urls["admin"]).get(crm, 0)
            discovery_calls = before - started
            full = run_singer(cmd, workdir / "tap.log", save=output)
            full_calls = api_calls(urls["admin"]).get(crm, 0) - before
            picked = _sample(output, crm, share)
            edited = _edit(crm, urls, picked)
            cmd = _with_catalog(config, workdir, crm, state=full["state"])
            routes_before = _routes(urls["admin"], crm)
            before = api_calls(urls["admin"]).get(crm, 0)
            again = run_singer(cmd, workdir / "tap.log")
            rerun_calls = api_calls(urls["admin"]).get(crm, 0) - before
            routes = {
                route: n - routes_before.get(route, 0)
                for route, n in _routes(urls["admin"], crm).items()
                if n - routes_before.get(route, 0)
            }
            rows.append({
                "crm": crm, "records": full["records"], "seconds": full["seconds"],
                "calls": full_calls, "edited": edited, "rerun_records": again["records"],
                "rerun_seconds": again["seconds"], "rerun_calls": rerun_calls,
                "share": rerun_calls / max(full_calls, 1), "rerun_routes": routes,
                "discovery_calls": discovery_calls,
            })  # fmt: skip
    finally:
        stop(proc)
    return rows


if __name__ == "__main__":  # python bench/incremental.py DB WORKDIR
    import sys

    for row in measure_incremental(Path(sys.argv[1]), Path(sys.argv[2])):
        print(json.dumps(row))
