"""The Salesforce reader (connectors/crm_connectors/salesforce/resources.py) against the sandbox
over real HTTP: typed schemas from describe, complete reads with deleted rows, ties across a
page boundary, resume inside a tie block, expired locators, the Bulk 2.0 backfill, faults, the
daily-quota guard and incremental reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from clientkit import SF_API, Sleeper, salesforce_oauth

from crm_connectors.base import Bookmark, Record
from crm_connectors.errors import QuotaExhausted
from crm_connectors.http import RetryPolicy
from crm_connectors.pacing import NoPacing, Pacer
from crm_connectors.salesforce.client import SalesforceClient
from crm_connectors.salesforce.emulator.model import fmt_datetime
from crm_connectors.salesforce.pacing import SalesforcePacer
from crm_connectors.salesforce.resources import (
    OBJECTS,
    SalesforceConnector,
    SalesforceResource,
    convert,
    json_type,
)
from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault

QUERY_MORE = "GET /services/data/{version}/query/{locator}"  # queryAll locators too


def salesforce(
    sandbox: Sandbox, sleeper: Sleeper | None = None, pacer: Pacer | None = None, **kw: Any
) -> SalesforceClient:
    """A client whose waits go to ``sleeper`` (no real sleeping)."""
    sleeper = sleeper or Sleeper()
    return SalesforceClient(
        salesforce_oauth(sandbox),
        pacer=pacer if pacer is not None else NoPacing(),
        sleep=sleeper,
        on_retry=sleeper.retries.append,
        **kw,
    )


def api(sandbox: Sandbox) -> tuple[str, dict[str, str]]:
    """The REST root and auth header, for setting the org up in a test."""
    oauth = salesforce_oauth(sandbox)
    token = oauth.token().reveal()
    return oauth.instance_url + SF_API, {"Authorization": f"Bearer {token}"}


def drain(
    res: SalesforceResource, bookmark: Bookmark | None = None
) -> list[tuple[Record, Bookmark]]:
    return list(res.read(bookmark or Bookmark()))


def store_ids(sandbox: Sandbox, obj: str = "Contact") -> dict[str, bool]:
    """id -> deleted, for every row the org holds (recycle bin and merged rows included)."""
    rows = sandbox.store.conn().execute(
        "SELECT id, state FROM records WHERE vendor='salesforce' AND object=?", (obj,)
    )
    return {str(r[0]): r[1] != 0 for r in rows}


def calls(sandbox: Sandbox) -> int:
    return int(sandbox.ctx.stats.snapshot()["vendors"].get("salesforce", {}).get("calls", 0))


def route_statuses(sandbox: Sandbox, route: str) -> dict[str, int]:
    vendor = sandbox.ctx.stats.snapshot()["vendors"].get("salesforce", {})
    return dict(vendor.get("routes", {}).get(route, {}).get("statuses", {}))


def create_ties(sandbox: Sandbox, count: int = 200) -> set[str]:
    """``count`` (<= 200) contacts created in one sObject Collections call, on one ms."""
    base, headers = api(sandbox)
    records = [
        {"attributes": {"type": "Contact"}, "LastName": f"Tie{i:03d}", "Email": f"t{i}@ex.com"}
        for i in range(count)
    ]
    reply = httpx.post(
        f"{base}/composite/sobjects",
        headers=headers,
        json={"allOrNone": True, "records": records},
    )
    assert reply.status_code == 200, reply.text
    results = reply.json()
    assert all(r["success"] for r in results), results[:3]
    ids = {str(r["id"]) for r in results}
    # The emulator stamps each row as it writes it; a real bulk load often lands many rows on
    # one millisecond, so the test puts these on one SystemModstamp in the store.
    with sandbox.store.write() as conn:
        (top,) = conn.execute(
            "SELECT MAX(updated_ms) FROM records WHERE vendor='salesforce'"
        ).fetchone()
        stamp = int(top) + 1000
        text = fmt_datetime(stamp)
        conn.executemany(
            "UPDATE records SET updated_ms=?, data=json_set(data, '$.SystemModstamp', ?)"
            " WHERE vendor='salesforce' AND object='Contact' AND id=?",
            [(stamp, text, i) for i in ids],
        )
    return ids


# -- schema -----------------------------------------------------------------------------------


def test_given_tooling_custom_fields_when_discovering_schema_then_types_are_real(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=5)
    base, headers = api(sandbox)
    for name, meta in (
        ("Health__c", {"label": "Health", "type": "Number", "precision": 5, "scale": 2}),
        ("Churned__c", {"label": "Churned", "type": "Checkbox"}),
        ("Seen_At__c", {"label": "Seen", "type": "DateTime"}),
    ):
        reply = httpx.post(
            f"{base}/tooling/sobjects/CustomField",
            headers=headers,
            json={"FullName": f"Account.{name}", "Metadata": meta},
        )
        assert reply.status_code == 201, reply.text
    with salesforce(sandbox) as client:
        account = SalesforceResource(client, "Account").schema()["properties"]
        contact = SalesforceResource(client, "Contact").schema()["properties"]
        user = SalesforceResource(client, "User").schema()["properties"]
    assert account["Health__c"] == {"type": ["number", "null"]}
    assert account["Churned__c"]["type"] in ("boolean", ["boolean", "null"])
    assert account["Seen_At__c"] == {"type": ["string", "null"], "format": "date-time"}
    assert account["AnnualRevenue"] == {"type": ["number", "null"]}
    assert account["NumberOfEmployees"] == {"type": ["integer", "null"]}
    assert account["Renewal_Date__c"] == {"type": ["string", "null"], "format": "date"}
    assert account["SystemModstamp"] == {"type": "string", "format": "date-time"}
    assert account["IsDeleted"] == {"type": "boolean"}
    assert account["Id"] == {"type": "string"}
    assert account["Phone"]["x-pii"] == "phone"
    assert "x-pii" not in account["Name"]
    assert contact["Email"]["x-pii"] == "email" and contact["LastName"]["x-pii"] == "name"
    assert user["Email"]["x-pii"] == "email"


def test_given_values_when_converting_then_they_take_schema_types() -> None:
    assert convert("12.5", "currency") == 12.5 and convert(3, "int") == 3
    assert convert("true", "boolean") is True and convert(False, "boolean") is False
    assert convert("2026-01-02T03:04:05.006+0000", "datetime") == "2026-01-02T03:04:05.006Z"
    assert convert("2026-01-02", "date") == "2026-01-02"
    assert convert("", "string") is None and convert("nan", "double") is None
    assert json_type("percent", nillable=False) == {"type": "number"}
    assert json_type("picklist") == {"type": ["string", "null"]}


# -- full reads, ties, resume ------------------------------------------------------------------


def test_given_deleted_contacts_when_reading_then_every_row_once_with_deleted_flag(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=40)
    base, headers = api(sandbox)
    victim = sorted(i for i, gone in store_ids(sandbox).items() if not gone)[0]
    assert httpx.delete(f"{base}/sobjects/Contact/{victim}", headers=headers).status_code == 204
    with salesforce(sandbox) as client:
        out = drain(SalesforceResource(client, "Contact", batch_size=200))
    expected = store_ids(sandbox)
    ids = [rec.id for rec, _ in out]
    assert len(ids) == len(set(ids)) == len(expected)
    assert {rec.id: rec.deleted for rec, _ in out} == expected
    assert expected[victim] is True
    keys = [(b.watermark, b.last_id) for _, b in out]
    assert keys == sorted(keys), "bookmarks ascend by (SystemModstamp, Id)"
    assert all(isinstance(rec.data["IsDeleted"], bool) for rec, _ in out)


def test_given_ties_across_a_page_boundary_when_reading_then_each_read_once(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=40)
    ties = create_ties(sandbox, 200)
    with salesforce(sandbox) as client:
        out = drain(SalesforceResource(client, "Contact", batch_size=200))
    ids = [rec.id for rec, _ in out]
    positions = [n for n, i in enumerate(ids) if i in ties]
    assert len({out[n][0].modified for n in positions}) == 1, "one call, one SystemModstamp"
    assert positions[0] // 200 != positions[-1] // 200, "the tie block straddles a page"
    assert Counter(ids) == Counter(set(store_ids(sandbox)))
    assert set(ids) >= ties


def test_given_bookmark_inside_a_tie_block_when_resuming_then_nothing_lost_or_repeated(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=40)
    ties = create_ties(sandbox, 150)
    with salesforce(sandbox) as client:
        full = drain(SalesforceResource(client, "Contact", batch_size=200))
        inside = [n for n, (rec, _) in enumerate(full) if rec.id in ties][70]
        rest = drain(SalesforceResource(client, "Contact", batch_size=200), full[inside][1])
    assert full[inside][1].last_id == full[inside][0].id
    assert [rec.id for rec, _ in rest] == [rec.id for rec, _ in full[inside + 1 :]]


def test_given_expired_locator_when_reading_then_query_restarts_from_last_bookmark(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=400, options={"salesforce": {"query_locator_ttl": 0.2}}
    )
    out: list[Record] = []
    with salesforce(sandbox) as client:
        for n, (rec, _) in enumerate(
            SalesforceResource(client, "Contact", batch_size=200).read(Bookmark())
        ):
            out.append(rec)
            if n == 150:
                # Idle past the locator's TTL, as a slow consumer would: page 2 was read ahead
                # already, so the locator expires before page 3 is asked for.
                sandbox.ctx.clock.advance(0.5)
    statuses = route_statuses(sandbox, QUERY_MORE)
    assert statuses.get("400", 0) >= 1, statuses
    ids = [rec.id for rec in out]
    assert len(ids) == len(set(ids)) == len(store_ids(sandbox))


# -- bulk --------------------------------------------------------------------------------------


def test_given_rows_above_threshold_when_backfilling_then_bulk_yields_the_rest_records(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=40)
    with salesforce(sandbox) as client:
        rest_res = SalesforceResource(client, "Contact", bulk_threshold=None)
        rest = {rec.id: rec for rec, _ in drain(rest_res)}
        bulk_res = SalesforceResource(client, "Contact", bulk_threshold=10, bulk_page_size=50)
        out = drain(bulk_res)
    assert rest_res.last_mode == "rest" and bulk_res.last_mode == "bulk"
    assert route_statuses(sandbox, "POST /services/data/{version}/jobs/query") == {"200": 1}
    bulk = {rec.id: rec for rec, _ in out}
    assert bulk == rest
    assert len(out) == len(bulk), "the catch-up pass repeats no unchanged record"
    assert out[-1][1].watermark is not None


def test_given_slow_job_and_faults_when_bulk_backfilling_then_polls_back_off_and_match_rest(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=40, options={"salesforce": {"bulk_query_delay": 0.3}}
    )
    with salesforce(sandbox) as client:
        rest = {rec.id: rec for rec, _ in drain(SalesforceResource(client, "Case"))}
    for fault in (
        {"kind": "server_error", "status": 503, "probability": 0.1},
        {"kind": "drop", "probability": 0.1},
        {"kind": "truncate", "probability": 0.1},
    ):
        sandbox.ctx.faults.add(
            Fault.from_dict({"vendor": "salesforce", "path": "/services/data/*", **fault})
        )
    waits: list[float] = []

    def nap(seconds: float) -> None:
        waits.append(seconds)
        sandbox.ctx.clock.advance(0.02)  # a little of the job's time passes on the sandbox

    retry = RetryPolicy(max_tries=12, max_time=10_000)
    client = SalesforceClient(salesforce_oauth(sandbox), pacer=NoPacing(), sleep=nap, retry=retry)
    with client:
        res = SalesforceResource(client, "Case", bulk_threshold=5, bulk_page_size=20)
        bulk = {rec.id: rec for rec, _ in drain(res)}
    assert res.last_mode == "bulk"
    assert bulk == rest
    polls = route_statuses(sandbox, "GET /services/data/{version}/jobs/query/{job_id}")
    assert polls.get("200", 0) >= 2, polls
    # Poll waits double from 0.5 s (retry waits are jittered, so never exactly these).
    assert 0.5 in waits and 1.0 in waits and 2.0 in waits, waits


def test_given_change_during_bulk_when_backfilling_then_catch_up_pass_reads_it(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=40)
    base, headers = api(sandbox)
    with salesforce(sandbox) as client:
        res = SalesforceResource(client, "Contact", bulk_threshold=10)
        reader = res.read(Bookmark())
        first, _ = next(reader)
        reply = httpx.patch(
            f"{base}/sobjects/Contact/{first.id}", headers=headers, json={"Title": "Changed"}
        )
        assert reply.status_code == 204
        out = [first, *(rec for rec, _ in reader)]
    latest = [rec for rec in out if rec.id == first.id][-1]
    assert latest.data["Title"] == "Changed"


# -- faults, quota, incremental ----------------------------------------------------------------


def read_all(client: SalesforceClient) -> dict[tuple[str, str], Record]:
    """Every standard object, 200 per page, each record by (object, Id)."""
    out: dict[tuple[str, str], Record] = {}
    for res in SalesforceConnector(client, batch_size=200).resources():
        assert isinstance(res, SalesforceResource)
        for rec, _ in res.read(Bookmark()):
            out[(res.sobject, rec.id)] = rec
    return out


def test_given_20pct_faults_when_reading_then_records_equal_a_clean_read(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=200)
    with salesforce(sandbox) as client:
        clean = read_all(client)
    for fault in (
        # Without Retry-After a 403 REQUEST_LIMIT_EXCEEDED is the daily quota, fatal by design.
        {"kind": "rate_limit", "retry_after": 1, "probability": 0.06},
        {"kind": "server_error", "status": 503, "probability": 0.05},
        {"kind": "drop", "probability": 0.05},
        {"kind": "truncate", "probability": 0.04},
    ):
        sandbox.ctx.faults.add(
            Fault.from_dict({"vendor": "salesforce", "path": "/services/data/*", **fault})
        )
    sleeper = Sleeper()
    retry = RetryPolicy(max_tries=12, max_time=10_000)
    with salesforce(sandbox, sleeper, retry=retry) as client:
        faulty = [read_all(client) for _ in range(2)]
    fired = sandbox.ctx.stats.snapshot()["vendors"]["salesforce"]["faults"]
    assert sum(fired.values()) >= 4 and len(fired) >= 2, fired
    assert sleeper.retries
    assert faulty == [clean, clean]


def test_given_small_daily_allocation_when_reading_then_guard_stops_before_it_is_used_up(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",),
        size=200,
        rate_limits="real",
        options={"salesforce": {"daily_api_requests": 8}},
    )
    pacer = SalesforcePacer(min_remaining=6)
    seen: list[Record] = []
    with salesforce(sandbox, pacer=pacer) as client:
        res = SalesforceResource(client, "Contact", batch_size=200, bulk_threshold=None)
        with pytest.raises(QuotaExhausted):
            for rec, _ in res.read(Bookmark()):
                seen.append(rec)
    used, allocation = pacer.usage
    assert allocation == 8 and used is not None and used <= 8 - 6
    assert seen, "some pages were read before the guard stopped"
    statuses = sandbox.ctx.stats.snapshot()["vendors"]["salesforce"].get("statuses", {})
    assert "403" not in statuses, statuses


def test_given_one_percent_changed_when_reading_incrementally_then_only_those_come(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=60)
    base, headers = api(sandbox)
    with salesforce(sandbox) as client:
        full = drain(SalesforceResource(client, "Contact"))
        live = sorted(rec.id for rec, _ in full if not rec.deleted)
        changed = set(live[:: max(1, len(live) // 3)][:3])
        for rid in changed:
            reply = httpx.patch(
                f"{base}/sobjects/Contact/{rid}", headers=headers, json={"Title": "Upd"}
            )
            assert reply.status_code == 204
        before = calls(sandbox)
        again = drain(SalesforceResource(client, "Contact"), full[-1][1])
        spent = calls(sandbox) - before
    assert {rec.id for rec, _ in again} == changed
    assert all(rec.data["Title"] == "Upd" for rec, _ in again)
    assert spent <= 2, spent


def test_given_extra_object_when_listing_resources_then_standard_ones_and_it() -> None:
    connector = SalesforceConnector(object.__new__(SalesforceClient), objects=("Invoice__c",))
    names = [r.name for r in connector.resources()]
    assert names == [f"salesforce_{o}" for o in (*OBJECTS, "Invoice__c")]
