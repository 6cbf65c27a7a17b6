"""The HubSpot reader (connectors/crm_connectors/hubspot/resources.py) against the sandbox over
real HTTP: typed schemas, complete reads, the >10,000-ties block, resume, incremental reads,
faults and archived records."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clientkit import Sleeper

from crm_connectors.auth import StaticToken
from crm_connectors.base import Bookmark, Record
from crm_connectors.errors import FatalError
from crm_connectors.http import RetryPolicy
from crm_connectors.hubspot.client import HubSpotClient, Page
from crm_connectors.hubspot.resources import (
    AssociationsResource,
    HubSpotResource,
    OwnersResource,
    convert,
)
from crm_connectors.pacing import NoPacing
from crm_connectors.sandbox.app import Sandbox, SandboxConfig
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec
from crm_connectors.secrets import Secret

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]
SEARCH = "POST /crm/v3/objects/{t}/search"


def hubspot(sandbox: Sandbox, sleeper: Sleeper | None = None, **kw: Any) -> HubSpotClient:
    """A client whose waits go to ``sleeper`` (no real sleeping) and with no proactive pacing
    (rate limits are off in these sandboxes; pacing has its own tests)."""
    sleeper = sleeper or Sleeper()
    return HubSpotClient(
        StaticToken(Secret(TOKEN), setting="private_app_token"),
        base_url=sandbox.urls["hubspot"],
        pacer=NoPacing(),
        sleep=sleeper,
        on_retry=sleeper.retries.append,
        **kw,
    )


def resource(client: HubSpotClient, obj: str = "contacts", **kw: Any) -> HubSpotResource:
    """A reader whose first run searches (the keyset reads under test here) unless a test asks
    for the list backfill."""
    kw.setdefault("settle_ms", 0)  # the sandbox indexes writes at once (search_index_lag_ms=0)
    kw.setdefault("list_backfill", False)
    return HubSpotResource(client, obj, **kw)


def live_ids(sandbox: Sandbox, obj: str) -> set[str]:
    rows = sandbox.store.conn().execute(
        "SELECT id FROM records WHERE vendor='hubspot' AND object=? AND state=0", (obj,)
    )
    return {str(r[0]) for r in rows}


def archived_ids(sandbox: Sandbox, obj: str) -> set[str]:
    rows = sandbox.store.conn().execute(
        "SELECT id FROM records WHERE vendor='hubspot' AND object=? AND state=1", (obj,)
    )
    return {str(r[0]) for r in rows}


def route_calls(sandbox: Sandbox, route: str | None = None) -> int:
    vendor = sandbox.ctx.stats.snapshot()["vendors"].get("hubspot", {})
    if route is None:
        return int(vendor.get("calls", 0))
    return int(vendor.get("routes", {}).get(route, {}).get("calls", 0))


def drain(res: HubSpotResource, bookmark: Bookmark | None = None) -> list[tuple[Record, Bookmark]]:
    return list(res.read(bookmark or Bookmark()))


@pytest.fixture(scope="module")
def tie_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """2,000 accounts and a block of 10,300 contacts sharing one millisecond (over the 10,000
    search cap), seeded once for the module."""
    db: Path = tmp_path_factory.mktemp("hubspot-ties") / "sandbox.sqlite"
    seed(db, WorldSpec(size=2000, seed=7, tie_block=10_300), ("hubspot",))
    sandbox = Sandbox(
        SandboxConfig(db_path=db, port=0, vendors=("hubspot",), rate_limits="off")
    ).start()
    yield sandbox
    sandbox.stop()


# -- schema -----------------------------------------------------------------------------------


def test_given_custom_number_property_when_discovering_schema_then_types_are_real(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=10)
    created = httpx.post(
        f"{sandbox.urls['hubspot']}/crm/v3/properties/companies",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "name": "health_score",
            "label": "Health score",
            "type": "number",
            "fieldType": "number",
            "groupName": "companyinformation",
        },
    )
    assert created.status_code == 201, created.text
    with hubspot(sandbox) as client:
        schema = resource(client, "companies").schema()
        contacts = resource(client, "contacts").schema()
    props = schema["properties"]
    assert props["health_score"] == {"type": ["number", "null"]}
    assert props["seats"]["type"] == ["number", "null"]
    assert props["renewal_date"] == {"type": ["string", "null"], "format": "date"}
    assert props["hs_lastmodifieddate"]["format"] == "date-time"
    assert props["industry"] == {"type": ["string", "null"]}
    assert props["id"] == {"type": "string"}
    assert {"createdAt", "updatedAt", "archived", "archivedAt"} <= set(props)
    assert props["phone"]["x-pii"] == "phone"
    assert "x-pii" not in props["name"]
    assert contacts["properties"]["email"]["x-pii"] == "email"
    assert contacts["properties"]["firstname"]["x-pii"] == "name"


def test_given_seeded_companies_when_reading_then_values_have_schema_types(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=40)
    with hubspot(sandbox) as client:
        res = resource(client, "companies", archived=False)
        records = [rec for rec, _ in drain(res)]
    seats = [r.data["seats"] for r in records if r.data.get("seats") is not None]
    assert seats and all(isinstance(v, int | float) and not isinstance(v, bool) for v in seats)
    renewals = [r.data["renewal_date"] for r in records if r.data.get("renewal_date")]
    assert renewals and all(len(v) == 10 and v[4] == "-" for v in renewals)
    for rec in records:
        assert rec.data["id"] == rec.id and rec.deleted is False
        assert rec.data["hs_lastmodifieddate"].endswith("Z")
        assert isinstance(rec.data["hs_object_id"], int)
        assert rec.modified > 0


# -- full reads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj", ["companies", "contacts", "deals", "tickets", "feedback_submissions"]
)
def test_given_sandbox_when_reading_everything_then_each_live_record_comes_once(
    make_sandbox: Any, obj: str
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=60)
    with hubspot(sandbox) as client:
        out = drain(resource(client, obj, archived=False, page_size=7))
    ids = [rec.id for rec, _ in out]
    assert len(ids) == len(set(ids))
    assert set(ids) == live_ids(sandbox, obj)
    stamps = [(rec.modified, int(rec.id)) for rec, _ in out]
    assert stamps == sorted(stamps)  # ascending by (modified, id): each bookmark is exact
    assert all(bm == Bookmark(rec.modified, rec.id) for rec, bm in out)


def test_given_ties_longer_than_a_page_when_reading_then_each_comes_once(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=30, tie_block=45)
    with hubspot(sandbox) as client:
        out = drain(resource(client, archived=False, page_size=10))
    ids = [rec.id for rec, _ in out]
    assert len(ids) == len(set(ids)) and set(ids) == live_ids(sandbox, "contacts")
    assert Counter(rec.modified for rec, _ in out).most_common(1)[0][1] >= 45


def test_given_10300_contacts_on_one_ms_when_reading_then_all_come_once(
    tie_sandbox: Sandbox,
) -> None:
    before = route_calls(tie_sandbox, SEARCH)
    with hubspot(tie_sandbox) as client:
        out = drain(resource(client, archived=False))
    calls = route_calls(tie_sandbox, SEARCH) - before
    ids = [rec.id for rec, _ in out]
    expected = live_ids(tie_sandbox, "contacts")
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert Counter(rec.modified for rec, _ in out).most_common(1)[0][1] > 10_000
    # No 400 from the 10,000 cap, and about one call per 200 records (no loops).
    statuses = tie_sandbox.ctx.stats.snapshot()["vendors"]["hubspot"]["routes"][SEARCH]["statuses"]
    assert set(statuses) == {"200"}
    assert calls <= len(expected) / 200 * 1.2 + 5


# -- resume -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_after", [150, 5_000, 12_000])
def test_given_read_stopped_midway_when_resuming_from_bookmark_then_union_is_complete(
    tie_sandbox: Sandbox, stop_after: int
) -> None:
    first: list[Record] = []
    saved = Bookmark()
    with hubspot(tie_sandbox) as client:
        for rec, bm in resource(client, archived=False).read(Bookmark()):
            first.append(rec)
            saved = bm
            if len(first) == stop_after:
                break  # a killed run: the last bookmark saved after an emitted record
        state = saved.to_state()
        second = [
            rec for rec, _ in resource(client, archived=False).read(Bookmark.from_state(state))
        ]
    union = [r.id for r in first] + [r.id for r in second]
    duplicates = len(union) - len(set(union))
    assert set(union) == live_ids(tie_sandbox, "contacts")
    assert duplicates == 0  # ties are emitted in id order, so (watermark, last_id) is exact
    assert saved.last_id is not None and saved.watermark == first[-1].modified


def test_given_bookmark_without_last_id_when_resuming_then_that_ms_is_read_again(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=30, tie_block=25)
    with hubspot(sandbox) as client:
        full = drain(resource(client, archived=False, page_size=10))
        tie_ms = Counter(rec.modified for rec, _ in full).most_common(1)[0][0]
        again = drain(resource(client, archived=False), Bookmark(tie_ms, None))
    later = {rec.id for rec, _ in full if rec.modified >= tie_ms}
    assert {rec.id for rec, _ in again} == later
    assert sum(1 for rec, _ in again if rec.modified == tie_ms) >= 25


# -- faults -----------------------------------------------------------------------------------


def test_given_20pct_faults_when_reading_then_records_equal_a_clean_read(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=60, tie_block=30)
    with hubspot(sandbox) as client:
        clean = {rec.id: rec for rec, _ in drain(resource(client, page_size=5))}
    for fault in (
        {"kind": "rate_limit", "retry_after": 1, "probability": 0.05},
        {"kind": "rate_limit", "probability": 0.05},
        {"kind": "server_error", "status": 503, "probability": 0.04},
        {"kind": "drop", "probability": 0.03},
        {"kind": "truncate", "probability": 0.03},
    ):
        sandbox.ctx.faults.add(Fault.from_dict({"vendor": "hubspot", "path": "/crm/*", **fault}))
    sleeper = Sleeper()
    with hubspot(sandbox, sleeper, retry=RetryPolicy(max_tries=12, max_time=10_000)) as client:
        faulty = {rec.id: rec for rec, _ in drain(resource(client, page_size=5))}
    fired = sandbox.ctx.stats.snapshot()["vendors"]["hubspot"]["faults"]
    assert sum(fired.values()) >= 10 and len(fired) >= 4, fired
    assert sleeper.retries
    assert faulty == clean


# -- archived, owners, associations ---------------------------------------------------------------


def test_given_archived_records_when_reading_then_they_come_with_deleted_flag(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=60)
    with hubspot(sandbox) as client:
        first = drain(resource(client))
        deleted = {rec.id for rec, _ in first if rec.deleted}
        rid = sorted(live_ids(sandbox, "contacts"))[0]
        reply = httpx.delete(
            f"{sandbox.urls['hubspot']}/crm/v3/objects/contacts/{rid}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert reply.status_code == 204
        second = drain(resource(client), first[-1][1])
    assert deleted == archived_ids(sandbox, "contacts") - {rid}
    assert deleted, "the seed has archived contacts"
    assert all(rec.data["archived"] is True for rec, _ in first if rec.deleted)
    newly = [rec for rec, _ in second if rec.deleted]
    assert [rec.id for rec in newly] == [rid]
    assert newly[0].data["archivedAt"]


class IgnoresFilters(HubSpotClient):
    """A HubSpot that ignores search filters (a proxy or a look-alike API that drops them): every
    search answers from the start of the sort order."""

    def search_page(self, obj: str, body: dict[str, Any]) -> Page:
        return super().search_page(obj, {**body, "filterGroups": []})


class ListsLiveAsArchived(HubSpotClient):
    """A HubSpot whose list ignores ``archived=true``: the archived pass gets live records."""

    def list_page(self, obj: str, after: str | None, **kw: Any) -> Page:
        kw.pop("archived", None)
        return super().list_page(obj, after, **kw)


@pytest.mark.parametrize("ties", [False, True], ids=["by time", "tie block by id"])
def test_given_a_server_ignoring_the_keyset_filters_then_the_read_stops_naming_the_call(
    make_sandbox: Any, ties: bool
) -> None:
    # Given a server that ignores search filters, and a read from the start or resumed inside
    # a tie block longer than a page
    sandbox = make_sandbox(vendors=("hubspot",), size=30, tie_block=45 if ties else 0)
    with hubspot(sandbox) as client:
        ms = Counter(rec.modified for rec, _ in drain(resource(client, archived=False)))
    start = Bookmark()
    if ties:
        block = ms.most_common(1)[0][0]
        start = Bookmark(block, "1")  # a resume after the block's first ids
    before = route_calls(sandbox, SEARCH)
    token = StaticToken(Secret(TOKEN), setting="private_app_token")
    # when it reads, then it stops with one error naming the call, not a loop
    with (
        IgnoresFilters(token, base_url=sandbox.urls["hubspot"], pacer=NoPacing()) as bad,
        pytest.raises(FatalError, match="ignores the keyset filters") as raised,
    ):
        drain(resource(bad, archived=False, page_size=10), start)
    assert "POST /crm/v3/objects/{t}/search" in str(raised.value)
    assert route_calls(sandbox, SEARCH) - before <= 3


class RepeatsItsCursor(HubSpotClient):
    """A HubSpot whose list ignores ``after``: every page is the first, with the same cursor."""

    def list_page(self, obj: str, after: str | None = None, **kw: Any) -> Page:
        return super().list_page(obj, None, **kw)


@pytest.mark.parametrize("stream", ["backfill", "associations"])
def test_given_a_list_that_repeats_its_cursor_then_the_read_stops_naming_the_call(
    make_sandbox: Any, stream: str
) -> None:
    # Given a server whose list hands back the same page and cursor whatever it is asked
    sandbox = make_sandbox(vendors=("hubspot",), size=300)
    token = StaticToken(Secret(TOKEN), setting="private_app_token")
    with RepeatsItsCursor(token, base_url=sandbox.urls["hubspot"], pacer=NoPacing()) as bad:
        reader = (
            resource(bad, "companies", archived=False, list_backfill=True)
            if stream == "backfill"
            else AssociationsResource(bad)
        )
        # when a first read lists, then it stops once the cursor comes back, not in a loop
        with pytest.raises(FatalError, match="cursor it had already given") as raised:
            list(reader.read(Bookmark()))
    assert "GET /crm/v3/objects/{t}" in str(raised.value)
    assert route_calls(sandbox, "GET /crm/v3/objects/{t}") <= 3


def test_given_a_list_that_ignores_archived_then_no_live_record_is_emitted_deleted(
    make_sandbox: Any,
) -> None:
    # Given a server whose archived=true list returns live records
    sandbox = make_sandbox(vendors=("hubspot",), size=30)
    with ListsLiveAsArchived(
        StaticToken(Secret(TOKEN), setting="private_app_token"),
        base_url=sandbox.urls["hubspot"],
        pacer=NoPacing(),
    ) as client:
        # when the reader reads with its archived pass
        out = drain(resource(client))
    # then only records marked archived are emitted deleted: here, none of the live ones
    live = live_ids(sandbox, "contacts")
    assert not [rec.id for rec, _ in out if rec.deleted and rec.id in live]
    assert {rec.id for rec, _ in out if not rec.deleted} == live


def test_given_owners_and_associations_when_reading_then_rows_match_the_store(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=30)
    with hubspot(sandbox) as client:
        owners = [rec for rec, _ in OwnersResource(client).read(Bookmark())]
        pairs = [rec for rec, _ in AssociationsResource(client).read(Bookmark())]
        owner_schema = OwnersResource(client).schema()
    assert len(owners) == 8 and owner_schema["properties"]["email"]["x-pii"] == "email"
    rows = sandbox.store.conn().execute(
        "SELECT a.from_id, a.to_id, a.to_type FROM associations a"
        " JOIN records f ON f.vendor=a.vendor AND f.object=a.from_type AND f.id=a.from_id"
        " JOIN records t ON t.vendor=a.vendor AND t.object=a.to_type AND t.id=a.to_id"
        " WHERE a.vendor='hubspot' AND a.from_type='companies' AND f.state=0 AND t.state=0"
        " AND a.to_type IN ('contacts','deals','tickets')"
    )
    expected = {(str(f), str(t), str(o)) for f, t, o in rows}
    got = {(r.data["from_id"], r.data["to_id"], r.data["to_object"]) for r in pairs}
    assert got == expected and len(pairs) == len(got)


def test_given_a_refresh_interval_when_reading_associations_then_full_reads_are_spaced(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=20)
    now = [1_800_000_000.0]
    with hubspot(sandbox) as client:
        assoc = AssociationsResource(client, refresh_hours=24, clock=lambda: now[0])
        # Given no bookmark, when reading, then every row, and only the last carries the new
        # watermark (when this full read started): a read stopped midway keeps the old one,
        # with a cursor to resume at its company page.
        first = list(assoc.read(Bookmark()))
        assert len(first) > 10
        assert all(bm.watermark is None and bm.cursor for _, bm in first[:-1])
        done = first[-1][1]
        assert done.watermark == 1_800_000_000_000 and done.cursor is None
        # Given that bookmark, when reading within the interval, then no call and no row
        calls = sandbox.ctx.stats.snapshot()["total"]
        now[0] += 23 * 3600
        assert list(assoc.read(done)) == []
        assert sandbox.ctx.stats.snapshot()["total"] == calls
        # and once the interval has passed, everything again
        now[0] += 2 * 3600
        again = list(assoc.read(done))
        assert [r.id for r, _ in again] == [r.id for r, _ in first]
        assert again[-1][1].watermark == 1_800_000_000_000 + 25 * 3_600_000


def test_given_a_full_associations_read_stopped_midway_when_resumed_then_it_repeats_one_page(
    make_sandbox: Any,
) -> None:
    # Given more than 100 companies (list pages of 100) and a read stopped inside the second
    sandbox = make_sandbox(vendors=("hubspot",), size=250)
    now = [1_800_000_000.0]
    with hubspot(sandbox) as client:
        assoc = AssociationsResource(client, refresh_hours=24, clock=lambda: now[0])
        full = list(assoc.read(Bookmark()))
        pages = sorted({bm.cursor for _, bm in full[:-1]}, key=lambda c: full_index(full, c))
        assert len(pages) >= 2, pages
        stop = full_index(full, pages[1]) + 5  # five rows into the second page
        # when the read resumes an hour later from the bookmark of the last row it delivered
        now[0] += 3600
        resumed = list(assoc.read(full[stop - 1][1]))
    # then, with what the stopped read delivered, every row comes, and it repeats only the
    # rows of the page it stopped in
    delivered = {r.id for r, _ in full[:stop]}
    again = {r.id for r, _ in resumed}
    assert delivered | again == {r.id for r, _ in full}
    assert len(delivered & again) == 5
    # and it finishes that same full read: the watermark is when it started, not the resume
    assert resumed[-1][1] == Bookmark(1_800_000_000_000)


def full_index(rows: list[tuple[Any, Bookmark]], cursor: str | None) -> int:
    """Where the rows carrying ``cursor`` start."""
    return next(i for i, (_, bm) in enumerate(rows) if bm.cursor == cursor)


# -- incremental (last: it writes to the module's sandbox) ----------------------------------


def test_given_1pct_of_contacts_patched_when_reading_from_bookmark_then_about_those_return(
    tie_sandbox: Sandbox,
) -> None:
    # Runs after the read-only tests on this module's sandbox (file order): it writes.
    with hubspot(tie_sandbox) as client:
        before = route_calls(tie_sandbox)
        full = drain(resource(client))
        full_calls = route_calls(tie_sandbox) - before
        saved = full[-1][1]
        live = sorted(live_ids(tie_sandbox, "contacts"))
        changed = live[::100]  # 1%
        for rid in changed:
            reply = httpx.patch(
                f"{tie_sandbox.urls['hubspot']}/crm/v3/objects/contacts/{rid}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json={"properties": {"jobtitle": "Chief Health Officer"}},
            )
            assert reply.status_code == 200, reply.text
        before, searches = route_calls(tie_sandbox), route_calls(tie_sandbox, SEARCH)
        again = drain(resource(client), saved)
        inc_calls = route_calls(tie_sandbox) - before
        inc_searches = route_calls(tie_sandbox, SEARCH) - searches
    got = [rec.id for rec, _ in again if not rec.deleted]
    assert sorted(got) == changed
    assert all(r.data["jobtitle"] == "Chief Health Officer" for r, _ in again if not r.deleted)
    assert full_calls > 50
    # ~1% of the records: the changed ones' search pages plus the archived list, re-listed
    # each run (it has no modification filter) [hubspot/API.md §1.6].
    assert inc_calls <= full_calls * 0.03 + 2, (inc_calls, full_calls)
    # One query for the rest of the bookmark's millisecond, then one per 200 changed records.
    assert inc_searches == 1 + -(-len(changed) // 200)


class ReversedTies(httpx.HTTPTransport):
    """Search pages come back in reverse order: HubSpot documents no order among ties
    [hubspot/API.md §1.4], so the reader must not rely on the sandbox's id tie-break."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method != "POST" or not request.url.path.endswith("/search"):
            return response
        body = json.loads(response.read())
        body["results"] = list(reversed(body.get("results") or []))
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, json=body)


def test_given_ties_in_any_order_when_reading_then_emitted_by_ms_then_id_each_once(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=30, tie_block=25)
    with hubspot(sandbox, transport=ReversedTies()) as client:
        out = drain(resource(client, archived=False, page_size=10))
    ids = [rec.id for rec, _ in out]
    assert len(ids) == len(set(ids)) and set(ids) == live_ids(sandbox, "contacts")
    stamps = [(rec.modified, int(rec.id)) for rec, _ in out]
    assert stamps == sorted(stamps)


def test_given_write_inside_settle_horizon_when_reading_then_next_run_gets_it(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=20)
    rid = sorted(live_ids(sandbox, "contacts"))[0]
    reply = httpx.patch(
        f"{sandbox.urls['hubspot']}/crm/v3/objects/contacts/{rid}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"properties": {"jobtitle": "Just written"}},
    )
    assert reply.status_code == 200
    with hubspot(sandbox) as client:
        # Search may not show a write for a few seconds [hubspot/API.md §1.4]: a read leaves the
        # last minute for the next run rather than moving its watermark past it.
        early = drain(resource(client, archived=False, settle_ms=60_000))
        later = drain(resource(client, archived=False, settle_ms=0), early[-1][1])
    assert rid not in {rec.id for rec, _ in early}
    assert [rec.id for rec, _ in later] == [rid]


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("42", "number", 42),
        ("12345678901234567", "number", 12345678901234567),
        ("2.5", "number", 2.5),
        ("NaN", "number", None),
        ("", "number", None),
        ("true", "bool", True),
        ("FALSE", "bool", False),
        ("yes", "bool", None),
        ("2026-01-31", "date", "2026-01-31"),
        ("1769817600000", "date", "2026-01-31"),
        ("2019-10-30T03:30:17.883Z", "datetime", "2019-10-30T03:30:17.883Z"),
        ("1572406217883", "datetime", "2019-10-30T03:30:17.883Z"),
        ("a;b", "enumeration", "a;b"),
        ("+1 555", "phone_number", "+1 555"),
    ],
)
def test_given_wire_string_when_converting_then_value_has_schema_type(
    value: str, kind: str, expected: Any
) -> None:
    got = convert(value, kind)
    assert got == expected and type(got) is type(expected)


# -- first run: the list backfill ---------------------------------------------------------------

LIST = "GET /crm/v3/objects/{t}"


def test_given_a_first_run_when_reading_then_the_list_gives_every_live_record_once(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=60)
    with hubspot(sandbox) as client:
        res = resource(client, archived=False, list_backfill=True)
        searches = route_calls(sandbox, SEARCH)
        out = drain(res)
    ids = [rec.id for rec, _ in out]
    assert len(ids) == len(set(ids)) and set(ids) == live_ids(sandbox, "contacts")
    assert route_calls(sandbox, SEARCH) == searches  # the search budget is left alone
    assert route_calls(sandbox, LIST) == -(-len(ids) // 100)
    # Every record but the last can be resumed by its page; the last hands over to search at T0.
    *listed, last = [bm for _, bm in out]
    assert all(bm.watermark is None and (bm.cursor or "").startswith("list:") for bm in listed)
    assert last.watermark is not None and last.cursor is None and last.last_id is None


def test_given_a_backfill_stopped_midway_when_resuming_then_it_lists_on_and_loses_nothing(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=120)
    with hubspot(sandbox) as client:
        first: list[Record] = []
        saved = Bookmark()
        for rec, bm in resource(client, list_backfill=True).read(Bookmark()):
            first.append(rec)
            saved = bm
            if len(first) == 250:  # inside the list (archived records come first)
                break
        assert (saved.cursor or "").startswith("list:")
        archived_before = route_calls(sandbox, LIST)
        second = drain(resource(client, list_backfill=True), Bookmark.from_state(saved.to_state()))
    union = {r.id for r in first} | {r.id for r, _ in second}
    assert union == live_ids(sandbox, "contacts") | archived_ids(sandbox, "contacts")
    # The resumed run re-reads at most the page it stopped in, and not the archived pass.
    assert len(first) + len(second) - len(union) < 100
    assert not any(rec.deleted for rec, _ in second)
    assert route_calls(sandbox, LIST) > archived_before
    assert second[-1][1].watermark is not None


def test_given_an_edit_during_the_backfill_when_the_next_run_reads_then_it_gets_the_edit(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=40)
    rid = sorted(live_ids(sandbox, "contacts"))[-1]
    with hubspot(sandbox) as client:
        pages = resource(client, archived=False, list_backfill=True).read(Bookmark())
        first = [next(pages)]
        # The record is edited while the backfill is under way (it may already be listed).
        reply = httpx.patch(
            f"{sandbox.urls['hubspot']}/crm/v3/objects/contacts/{rid}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"properties": {"jobtitle": "Edited during the backfill"}},
        )
        assert reply.status_code == 200
        first += list(pages)
        after = drain(resource(client, archived=False, list_backfill=True), first[-1][1])
    edited = [rec for rec, _ in after if rec.id == rid]
    assert edited and edited[0].data["jobtitle"] == "Edited during the backfill"


def test_given_a_start_date_when_reading_a_first_run_then_it_searches_from_it(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=40)
    with hubspot(sandbox) as client:
        everything = drain(resource(client, archived=False))
        cut = sorted(rec.modified for rec, _ in everything)[len(everything) // 2]
        lists = route_calls(sandbox, LIST)
        since = drain(resource(client, archived=False, list_backfill=True, start_date=cut))
    assert route_calls(sandbox, LIST) == lists
    assert {r.id for r, _ in since} == {r.id for r, _ in everything if r.modified >= cut}
