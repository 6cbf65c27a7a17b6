"""An incremental rerun of tap-crm reads what changed, not everything again.

Given a full sync of the three CRMs and its last STATE, when 1% of the records of the incremental
streams are changed through each vendor's own API and the tap runs again from that STATE, then it
emits every changed record and next to nothing else, and spends a small part of the full sync's
API calls.

Where the exact numbers come from:

- Records. HubSpot and Salesforce resume strictly after the bookmark's ``(modified, id)``, so
  the rerun emits exactly the changed records. Intercom's search cannot order records inside one
  second, so a resumed read re-reads the watermark's second [intercom/resources.py]: the rerun
  also emits the records the full sync ended on, those modified in the watermark's second.
- API calls. Every run makes the same discovery calls (HubSpot properties, Salesforce token and
  describes, Intercom data attributes) and reads some lists in full: HubSpot's archived records
  (search leaves them out and the list has no "archived since" filter) and Intercom's companies
  (the scroll has no filter either). These do not shrink with fewer changes, so whole-run totals
  cannot fall to 10% of a full sync; the test checks they do not grow. The incremental reads
  (HubSpot search, Salesforce queryAll, Intercom search) are what the state saves: a rerun makes
  one page per stream, the least any run can (HubSpot two: it first finishes the watermark's
  millisecond), and at most 10% of the full sync's reads beyond that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from tapkit import Ids, TapRun, discover, run_tap, select, tap_config

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.store import LIVE
from crm_connectors.timefmt import iso_to_ms

VENDORS = ("hubspot", "salesforce", "intercom")
SF_API = "/services/data/v66.0"

#: The streams read incrementally; per stream, the field a user edits (None: read-only in the
#: vendor's API, so never changed here, but still read from the state).
CHANGES: dict[str, dict[str, str | None]] = {
    "hubspot": {
        "companies": "description",
        "contacts": "jobtitle",
        "deals": "description",
        "tickets": "subject",
        "feedback_submissions": None,
    },
    "salesforce": {
        "Account": "Description",
        "Contact": "Title",
        "Opportunity": "Amount",
        "Case": "Subject",
        "Task": "Subject",
        "NPS_Response__c": "Comment__c",
        "User": None,
    },
    "intercom": {"contacts": "name", "conversations": "title", "companies": "name"},
}
STREAMS = [f"{vendor}_{obj}" for vendor, objs in CHANGES.items() for obj in objs]
#: Each CRM's modification time field in the emitted records.
MODIFIED = {"intercom": "updated_at"}

#: Routes by what they cost: made the same way by every run, read in full by every run, or
#: read from the state's bookmark.
DISCOVERY = {
    "hubspot": {"GET /crm/v3/properties/{t}"},
    "salesforce": {
        "POST /services/oauth2/token",
        "GET /services/data/{version}/sobjects/{sobject}/describe",
    },
    "intercom": {"GET /data_attributes"},
}
FULL_LISTS = {
    "hubspot": {"GET /crm/v3/objects/{t}"},  # archived=true
    "salesforce": set(),
    "intercom": {"GET /companies/scroll"},
}
INCREMENTAL_READS = {
    "hubspot": {"POST /crm/v3/objects/{t}/search"},
    "salesforce": {
        "GET /services/data/{version}/queryAll",
        "GET /services/data/{version}/query/{locator}",  # nextRecordsUrl
    },
    "intercom": {"POST /contacts/search", "POST /conversations/search"},
}
#: Where a first run reads what later runs read incrementally: HubSpot lists every live record
#: (the list backfill) before searching from then on.
BACKFILL = {"hubspot": {"GET /crm/v3/objects/{t}"}, "salesforce": set(), "intercom": set()}
#: Incremental reads a rerun makes per stream when the changes fit in one page.
FLOOR_PER_STREAM = {"hubspot": 2, "salesforce": 1, "intercom": 1}
INCREMENTAL_STREAMS = {"hubspot": 5, "salesforce": 7, "intercom": 2}  # intercom_companies: scroll


def calls(sandbox: Sandbox) -> dict[str, Counter[str]]:
    """API calls per vendor and route since the last reset, then reset."""
    admin = sandbox.urls["admin"]
    vendors = httpx.get(f"{admin}/_sandbox/stats").json()["vendors"]
    httpx.post(f"{admin}/_sandbox/stats/reset").raise_for_status()
    return {
        v: Counter(
            {route: r["calls"] for route, r in vendors.get(v, {"routes": {}})["routes"].items()}
        )
        for v in VENDORS
    }


def part(counter: Counter[str], routes: set[str]) -> int:
    """The calls of ``counter`` to ``routes``."""
    return sum(n for route, n in counter.items() if route in routes)


def pick(sandbox: Sandbox, vendor: str, obj: str) -> list[str]:
    """1% of the object's live records (every 100th by id, at least one)."""
    rows = sandbox.store.conn().execute(
        "SELECT id FROM records WHERE vendor = ? AND object = ? AND state = ? ORDER BY id",
        (vendor, obj, LIVE),
    )
    return [row[0] for row in rows][::100]


def change_records(sandbox: Sandbox) -> dict[str, set[str]]:
    """Edit 1% of each writable object through the vendor's API; the ids by stream."""
    changed: dict[str, set[str]] = {}
    urls = sandbox.urls
    hubspot = httpx.Client(
        base_url=urls["hubspot"],
        headers={"Authorization": f"Bearer {DEFAULT_CREDENTIALS['hubspot']['private_app_token']}"},
    )
    for obj, prop in CHANGES["hubspot"].items():
        if prop is None:
            continue
        ids = pick(sandbox, "hubspot", obj)
        inputs = [{"id": i, "properties": {prop: f"edited {i}"}} for i in ids]
        reply = hubspot.post(f"/crm/v3/objects/{obj}/batch/update", json={"inputs": inputs})
        assert reply.status_code == 200, reply.text
        changed[f"hubspot_{obj}"] = set(ids)
    sf = DEFAULT_CREDENTIALS["salesforce"]
    token = httpx.post(
        f"{urls['salesforce']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sf["client_id"],
            "client_secret": sf["client_secret"],
            "refresh_token": sf["refresh_token"],
        },
    ).json()
    salesforce = httpx.Client(
        base_url=token["instance_url"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    for obj, field in CHANGES["salesforce"].items():
        if field is None:
            continue
        ids = pick(sandbox, "salesforce", obj)
        for i in ids:
            value: Any = 12345.0 if field == "Amount" else f"edited {i}"
            reply = salesforce.patch(f"{SF_API}/sobjects/{obj}/{i}", json={field: value})
            assert reply.status_code == 204, reply.text
        changed[f"salesforce_{obj}"] = set(ids)
    intercom = httpx.Client(
        base_url=urls["intercom"],
        headers={"Authorization": f"Bearer {DEFAULT_CREDENTIALS['intercom']['access_token']}"},
    )
    for obj, field in CHANGES["intercom"].items():
        assert field is not None
        ids = pick(sandbox, "intercom", obj)
        for i in ids:
            reply = intercom.put(f"/{obj}/{i}", json={field: f"edited {i}"})
            assert reply.status_code == 200, reply.text
        changed[f"intercom_{obj}"] = set(ids)
    for client in (hubspot, salesforce, intercom):
        client.close()
    return changed


def at_watermark(full: TapRun, state: Mapping[str, Any]) -> dict[str, set[str]]:
    """Per Intercom stream, the records of ``full`` modified in its bookmark's millisecond
    (Intercom times are whole seconds): the ones a resumed Intercom read emits again."""
    out: dict[str, set[str]] = {}
    ids = Ids().add(full)
    for stream in STREAMS:
        vendor = stream.partition("_")[0]
        if vendor not in MODIFIED:
            continue
        watermark = state["bookmarks"][stream]["crm_bookmark"]["watermark"]
        keys = ids.keys[stream]
        out[stream] = {
            ":".join(str(r[k]) for k in keys)
            for r in full.records.get(stream, ())
            if r[MODIFIED[vendor]] and iso_to_ms(r[MODIFIED[vendor]]) == watermark
        }
    return out


def test_rerun_after_one_percent_changed_reads_about_one_percent(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a sandbox of a few hundred accounts whose Salesforce org serves 200-row query pages
    # (Salesforce does not promise the batch size asked for), and the incremental streams
    sandbox = make_sandbox(size=400, options={"salesforce": {"query_batch_max": 200}})
    config = tap_config(sandbox, hubspot_search_requests_per_second=1000)
    catalog = select(discover(tmp_path / "discover", config), STREAMS)
    calls(sandbox)  # reset
    # and a full sync with its last STATE
    full = run_tap(tmp_path / "full", config, catalog=catalog)
    assert full.returncode == 0, full.stderr[-3000:]
    state = full.last_state
    assert state is not None
    full_calls = calls(sandbox)
    total = sum(full.counts.values())
    # when 1% of the records are changed through the vendors' APIs
    changed = change_records(sandbox)
    n_changed = sum(len(ids) for ids in changed.values())
    edited_streams = sum(full.counts[s] for s in changed)
    assert 0.005 * edited_streams <= n_changed <= 0.02 * edited_streams, (n_changed, total)
    calls(sandbox)  # reset: the edits are not the tap's calls
    # and the tap runs again from the STATE
    rerun = run_tap(tmp_path / "rerun", config, state=state, catalog=catalog)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rerun_calls = calls(sandbox)

    # then every changed record is emitted, and besides them only the records Intercom re-reads
    # in the watermark's second (none for HubSpot and Salesforce)
    emitted = Ids().add(rerun).sets()
    reread = at_watermark(full, state)
    for stream in STREAMS:
        expected = changed.get(stream, set()) | reread.get(stream, set())
        assert emitted.get(stream, set()) == expected, stream
    # so about 1% of the records: the changed ones plus Intercom's one-second overlap
    n_emitted = sum(rerun.counts.values())
    slack = sum(len(ids - changed.get(s, set())) for s, ids in reread.items())
    assert n_emitted == n_changed + slack
    assert n_emitted <= 0.02 * total, (n_emitted, n_changed, slack, total)

    # and each vendor's API calls: discovery is the same and full lists are no more, while the
    # incremental reads are one page per stream, nowhere near the full sync's
    report = []
    for vendor in VENDORS:
        before, after = full_calls[vendor], rerun_calls[vendor]
        assert part(after, DISCOVERY[vendor]) == part(before, DISCOVERY[vendor]), vendor
        assert part(after, FULL_LISTS[vendor]) <= part(before, FULL_LISTS[vendor]), vendor
        reads_full = part(before, INCREMENTAL_READS[vendor] | BACKFILL[vendor])
        reads_rerun = part(after, INCREMENTAL_READS[vendor])
        bound = FLOOR_PER_STREAM[vendor] * INCREMENTAL_STREAMS[vendor] + 0.1 * reads_full
        assert reads_rerun <= bound, (vendor, reads_rerun, reads_full)
        # (a rerun that ignored the state would read as much as the full sync, and fail that)
        assert reads_full > bound, (vendor, reads_full)
        known = DISCOVERY[vendor] | FULL_LISTS[vendor] | INCREMENTAL_READS[vendor]
        assert set(before) | set(after) <= known, (vendor, sorted(set(before) - known))
        report.append(
            f"{vendor}: {after.total()}/{before.total()} calls, reads {reads_rerun}/{reads_full}"
        )
    print(f"records: {n_emitted} emitted, {n_changed} changed, {slack} re-read, {total} in all")
    print("rerun/full:", "; ".join(report))
