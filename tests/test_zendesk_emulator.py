"""Contract tests of the Zendesk Support emulator over real loopback HTTP
(connectors/crm_connectors/zendesk/API.md, cited as §N.M).

The sandbox is built here without the connector registry: the world is generated with the other
emulators' profiles plus Zendesk's, the Zendesk seeder is driven directly, and the app runs on its
own listener. No test sleeps: sandbox time moves with ``ctx.clock.advance``.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.admin import AdminApp
from crm_connectors.sandbox.context import Context, SandboxConfig
from crm_connectors.sandbox.emulators import emulators
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.http import Listener
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED, Store
from crm_connectors.sandbox.world import OWNERS, WorldSpec, generate
from crm_connectors.zendesk.emulator import EMULATOR
from crm_connectors.zendesk.emulator.app import ZendeskEmulator
from crm_connectors.zendesk.emulator.seed import Seeder

CREDS = dict(EMULATOR.credentials)
#: 200 accounts, seed 3: 82 organizations (one deleted), 217 end users (two inactive), 137
#: tickets, 43 satisfaction ratings.
WORLD_SIZE, WORLD_SEED = 200, 1  # a world with a deleted organization


def world_spec() -> WorldSpec:
    others = tuple(e.world for name, e in emulators().items() if name != "zendesk")
    return WorldSpec(size=WORLD_SIZE, seed=WORLD_SEED, tie_block=0, crms=(*others, EMULATOR.world))


def basic(email: str = CREDS["email"], token: str = CREDS["api_token"]) -> str:
    return "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()


@dataclass
class Zd:
    ctx: Context
    app: ZendeskEmulator
    url: str
    clients: list[httpx.Client] = field(default_factory=list)  # closed at teardown

    @property
    def store(self) -> Store:
        return self.ctx.store

    def client(self, auth: str | None = None) -> httpx.Client:
        headers = {"Authorization": auth or basic(), "Accept": "application/json"}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def advance(self, seconds: float) -> None:
        self.ctx.clock.advance(seconds)

    def count(self, obj: str, state: int | None = LIVE) -> int:
        return self.store.count("zendesk", obj, state)


MakeZd = Callable[..., Zd]


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded database per session; each test works on its own copy."""
    db = tmp_path_factory.mktemp("zendesk") / "template.sqlite"
    store = Store(db)
    spec = world_spec()
    seeder = Seeder(store, spec)
    for bundle in generate(spec):
        seeder.add(bundle)
    seeder.finish()
    store.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return db


@pytest.fixture
def make_zd(seeded_db: Path, tmp_path: Path) -> Iterator[MakeZd]:
    """Start Zendesk emulators on free ports: ``make_zd(rate_limits="off", options={...})``."""
    started: list[tuple[Listener, Zd]] = []

    def make(rate_limits: str = "off", options: dict[str, Any] | None = None) -> Zd:
        db = tmp_path / f"zendesk-{len(started)}.sqlite"
        shutil.copy(seeded_db, db)
        config = SandboxConfig(
            db_path=db,
            port=0,
            vendors=(),
            rate_limits=rate_limits,
            options={"zendesk": options or {}},
            credentials={"zendesk": dict(CREDS)},
        )
        ctx = Context(config)
        ctx.admin = AdminApp(ctx)
        app = ZendeskEmulator(ctx)
        ctx.apps["zendesk"] = app
        listener = Listener("127.0.0.1", 0, app)
        ctx.urls["zendesk"] = listener.url
        listener.start()
        zd = Zd(ctx, app, listener.url)
        started.append((listener, zd))
        return zd

    yield make
    for listener, zd in started:
        for client in zd.clients:
            client.close()
        listener.stop()
        zd.ctx.store.close()


@pytest.fixture
def zd(make_zd: MakeZd) -> Zd:
    return make_zd()


@pytest.fixture
def api(zd: Zd) -> Iterator[httpx.Client]:
    with zd.client() as client:
        yield client


@pytest.fixture(autouse=True)
def no_wall_clock_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Nothing here (client, emulator, listener) may wait on the wall clock: ``time.sleep`` is
    replaced for the whole test; calls are recorded and fail the test at teardown."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    yield calls
    assert calls == [], f"time.sleep was called: {calls}"


def _unix(iso_text: str) -> int:
    return int(dt.datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp())


def _export_all(api: httpx.Client, first: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow a time-based export's next_page until end_of_stream; every page's items."""
    pages = [api.get(first, params=params).json()]
    while not pages[-1]["end_of_stream"]:
        pages.append(api.get(pages[-1]["next_page"]).json())
    return pages


def _cursor_all(api: httpx.Client, first: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    pages = [api.get(first, params=params).json()]
    while not pages[-1]["end_of_stream"]:
        pages.append(api.get(pages[-1]["after_url"]).json())
    return pages


def _finish_jobs(zd: Zd, api: httpx.Client, job_ids: list[str]) -> list[dict[str, Any]]:
    zd.advance(float(zd.app.options["job_delay_seconds"]) + 0.01)
    return [api.get(f"/api/v2/job_statuses/{j}.json").json()["job_status"] for j in job_ids]


def _org(api: httpx.Client, oid: int) -> dict[str, Any]:
    resp = api.get(f"/api/v2/organizations/{oid}.json")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["organization"])


def _org_ids(zd: Zd, n: int, offset: int = 0) -> list[int]:
    rows = zd.store.conn().execute(
        "SELECT id FROM records WHERE vendor = 'zendesk' AND object = 'organizations'"
        " AND state = 0 ORDER BY seq LIMIT ? OFFSET ?",
        (n, offset),
    )
    return [int(r[0]) for r in rows]


# -- auth [§1] --------------------------------------------------------------------------------


def test_given_api_token_basic_auth_when_calling_users_me_then_the_sandbox_admin_answers(
    api: httpx.Client,
) -> None:
    # Given the well-known "{email}/token:{api_token}" credentials
    # When the caller asks who it is
    resp = api.get("/api/v2/users/me.json")
    # Then it is the seeded admin, and the path also works without .json
    assert resp.status_code == 200
    me = resp.json()["user"]
    assert me["email"] == CREDS["email"]
    assert me["role"] == "admin"
    assert me["url"].startswith(api.base_url.scheme + "://" + api.base_url.netloc.decode())
    assert api.get("/api/v2/users/me").json()["user"]["id"] == me["id"]


def test_given_a_wrong_api_token_or_a_password_when_calling_then_401_couldnt_authenticate(
    zd: Zd,
) -> None:
    password = "Basic " + base64.b64encode(f"{CREDS['email']}:secret".encode()).decode()
    for auth in (basic(token="wrong"), password, basic(email="nobody@example.com"), "Bearer"):
        with zd.client(auth) as client:
            resp = client.get("/api/v2/users/me.json")
        if auth == "Bearer":
            assert resp.status_code == 401
            assert resp.json()["error"] == "invalid_token"
            continue
        assert resp.status_code == 401, auth
        assert resp.json() == {"error": "Couldn't authenticate you"}  # §1.5: no description
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="Web Password"'
    no_auth = httpx.get(f"{zd.url}/api/v2/organizations.json")
    assert no_auth.status_code == 401
    assert no_auth.json() == {"error": "Couldn't authenticate you"}


def test_given_client_credentials_when_exchanged_then_bearer_works_until_its_ttl(zd: Zd) -> None:
    # Given the OAuth client's credentials, posted as JSON and as a form
    grant = {"grant_type": "client_credentials", "client_id": CREDS["client_id"],
             "client_secret": CREDS["client_secret"], "scope": "read write"}  # fmt: skip
    as_json = httpx.post(f"{zd.url}/oauth/tokens", json=grant)
    as_form = httpx.post(f"{zd.url}/oauth/tokens", data=grant)
    bad = httpx.post(f"{zd.url}/oauth/tokens", json={**grant, "client_secret": "nope"})
    # Then each gets a bearer token living access_token_ttl seconds
    assert as_json.status_code == as_form.status_code == 201
    token = as_json.json()
    assert token["token_type"] == "bearer"
    assert token["scope"] == "read write"
    assert token["expires_in"] == CREDS["access_token_ttl"]
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    with zd.client(f"Bearer {token['access_token']}") as client:
        assert client.get("/api/v2/users/me.json").status_code == 200
        # When the token's lifetime passes on the sandbox clock
        zd.advance(CREDS["access_token_ttl"] + 1)
        expired = client.get("/api/v2/users/me.json")
    # Then it is rejected in OAuth's shape
    assert expired.status_code == 401
    assert expired.json() == {
        "error": "invalid_token",
        "error_description": "The access token provided is expired, revoked, malformed or"
        " invalid for other reasons.",
    }


def test_given_a_read_only_token_when_writing_then_403_forbidden_but_reads_pass(zd: Zd) -> None:
    grant = {"grant_type": "client_credentials", "client_id": CREDS["client_id"],
             "client_secret": CREDS["client_secret"], "scope": "read"}  # fmt: skip
    token = httpx.post(f"{zd.url}/oauth/tokens", json=grant).json()["access_token"]
    oid = _org_ids(zd, 1)[0]
    with zd.client(f"Bearer {token}") as client:
        read = client.get(f"/api/v2/organizations/{oid}.json")
        write = client.put(f"/api/v2/organizations/{oid}.json",
                           json={"organization": {"notes": "x"}})  # fmt: skip
    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["error"] == "Forbidden"


def test_given_a_minted_api_token_when_used_a_day_later_then_it_still_works_within_its_scopes(
    zd: Zd, api: httpx.Client
) -> None:
    # Given a token minted by the admin with POST /api/v2/oauth/tokens [§1.4]
    minted = api.post("/api/v2/oauth/tokens.json",
                      json={"token": {"client_id": 1, "scopes": ["read"]}})  # fmt: skip
    assert minted.status_code == 201
    token = minted.json()["token"]
    assert token["expires_at"] is None and token["scopes"] == ["read"]
    # When it is used a day later
    zd.advance(86_400)
    with zd.client(f"Bearer {token['full_token']}") as client:
        read = client.get("/api/v2/users/me.json")
        write = client.post("/api/v2/tickets.json",
                            json={"ticket": {"comment": {"body": "x"}}})  # fmt: skip
    # Then it has not expired, and it may only read
    assert read.status_code == 200
    assert read.json()["user"]["email"] == CREDS["email"]
    assert write.status_code == 403


def test_given_an_agent_when_exporting_or_defining_fields_then_403_forbidden(
    make_zd: MakeZd,
) -> None:
    # Given a seeded agent signing in with the account's token, and a sandbox whose
    # credentials act as an agent (option admin: False)
    agent_email = OWNERS[1][2]
    as_agent = make_zd()
    not_admin = make_zd(options={"admin": False})
    field = {"organization_field": {"type": "text", "key": "health", "title": "Health"}}
    for zd, auth in ((as_agent, basic(email=agent_email)), (not_admin, basic())):
        with zd.client(auth) as client:
            # When it calls admin-only endpoints
            export = client.get("/api/v2/incremental/organizations.json?start_time=0")
            created = client.post("/api/v2/organization_fields.json", json=field)
            ratings = client.get("/api/v2/satisfaction_ratings")
            listed = client.get("/api/v2/organizations.json")
        # Then they answer 403 in Zendesk's shape, while ordinary reads work
        for resp in (export, created, ratings):
            assert resp.status_code == 403
            assert resp.json()["error"] == "Forbidden"
            assert resp.json()["description"].startswith("You do not have access to this page")
        assert listed.status_code == 200


# -- time-based exports [§3.2] ----------------------------------------------------------------


def test_given_batches_in_three_seconds_when_exporting_by_time_then_the_boundary_second_repeats(
    zd: Zd, api: httpx.Client
) -> None:
    # Given three update_many jobs, 5 s apart, each touching 3 organizations in one instant
    batches = [_org_ids(zd, 3, offset) for offset in (0, 3, 6)]
    for batch in batches:
        body = {"organizations": [{"id": oid, "notes": "batch"} for oid in batch]}
        job = api.put("/api/v2/organizations/update_many.json", json=body).json()["job_status"]
        _finish_jobs(zd, api, [job["id"]])
        zd.advance(5)
    zd.advance(61)
    updated = [_unix(_org(api, b[0])["updated_at"]) for b in batches]
    s1, s2, s3 = updated
    assert s1 < s2 < s3
    # When exporting from the first second with per_page 4
    first = api.get("/api/v2/incremental/organizations.json",
                    params={"start_time": s1, "per_page": 4}).json()  # fmt: skip
    # Then the page keeps all of the last second's items (6 > per_page), ends at that second,
    # and the next page (an absolute link on the sandbox host) repeats it
    assert [o["id"] for o in first["organizations"]] == batches[0] + batches[1]
    assert first["count"] == 6
    assert first["end_time"] == s2
    assert first["end_of_stream"] is False
    link = urllib.parse.urlsplit(first["next_page"])
    assert f"{link.scheme}://{link.netloc}" == zd.url
    assert link.path == "/api/v2/incremental/organizations.json"
    assert urllib.parse.parse_qs(link.query) == {"start_time": [str(s2)], "per_page": ["4"]}
    second = api.get(first["next_page"]).json()
    assert [o["id"] for o in second["organizations"]] == batches[1] + batches[2]
    assert second["end_time"] == s3
    assert second["end_of_stream"] is True
    # And a page that is all one second ends one second later (no endless repetition)
    single = api.get("/api/v2/incremental/organizations.json",
                     params={"start_time": s3, "per_page": 1}).json()  # fmt: skip
    assert single["count"] == 3
    assert single["end_time"] == s3 + 1


def test_given_seeded_users_when_exporting_by_time_then_all_come_in_update_order_deleted_inactive(
    zd: Zd, api: httpx.Client
) -> None:
    pages = _export_all(api, "/api/v2/incremental/users.json", {"start_time": 0, "per_page": 50})
    users = {u["id"]: u for page in pages for u in page["users"]}
    stamps = [u["updated_at"] for page in pages for u in page["users"]]
    assert len(users) == zd.count("users", None)
    assert stamps == sorted(stamps)
    inactive = {uid for uid, u in users.items() if not u["active"]}
    assert len(inactive) == zd.count("users", ARCHIVED) + zd.count("users", MERGED) > 0
    assert all(u["permanently_deleted"] is False for u in users.values())
    assert all(page["count"] == len(page["users"]) for page in pages)


def test_given_a_deleted_organization_when_exporting_then_it_carries_deleted_at_and_is_not_listed(
    zd: Zd, api: httpx.Client
) -> None:
    pages = _export_all(api, "/api/v2/incremental/organizations", {"start_time": 0})
    exported = {o["id"]: o for page in pages for o in page["organizations"]}
    deleted = [o for o in exported.values() if o.get("deleted_at")]
    assert len(exported) == zd.count("organizations", None)
    assert len(deleted) == zd.count("organizations", PURGED) + zd.count("organizations", MERGED)
    assert deleted
    gone = api.get(f"/api/v2/organizations/{deleted[0]['id']}.json")
    assert gone.status_code == 404
    assert gone.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_given_a_start_time_within_the_last_minute_when_exporting_then_422_too_recent(
    zd: Zd, api: httpx.Client
) -> None:
    now = int(zd.ctx.clock.time())
    for path in ("/api/v2/incremental/tickets.json", "/api/v2/incremental/users/cursor.json"):
        recent = api.get(path, params={"start_time": now - 30})
        assert recent.status_code == 422
        assert recent.json() == {
            "error": "InvalidValue",
            "description": "Too recent start_time. Use a start_time older than 1 minute",
        }
        assert api.get(path).status_code == 400
        assert api.get(path, params={"start_time": "yesterday"}).status_code == 400
        assert api.get(path, params={"start_time": now - 90}).status_code == 200


def test_given_a_fresh_change_when_exporting_then_it_is_held_back_for_sixty_seconds(
    zd: Zd, api: httpx.Client
) -> None:
    # Given an organization updated just now
    oid = _org_ids(zd, 1)[0]
    start = int(zd.ctx.clock.time()) - 120
    api.put(f"/api/v2/organizations/{oid}.json", json={"organization": {"notes": "fresh"}})
    # When exporting at once, and again 61 s later
    at_once = api.get("/api/v2/incremental/organizations.json", params={"start_time": start})
    zd.advance(61)
    later = api.get("/api/v2/incremental/organizations.json", params={"start_time": start})
    # Then the change shows only once it is more than a minute old
    assert at_once.json()["organizations"] == []
    assert at_once.json()["end_of_stream"] is True
    assert [o["id"] for o in later.json()["organizations"]] == [oid]
    assert later.json()["organizations"][0]["notes"] == "fresh"


# -- cursor exports [§3.3] --------------------------------------------------------------------


def test_given_a_cursor_export_when_resumed_from_the_saved_after_cursor_then_only_changes_come(
    zd: Zd, api: httpx.Client
) -> None:
    # Given a full cursor export of tickets, 20 per page, with metric sets
    pages = _cursor_all(api, "/api/v2/incremental/tickets/cursor.json",
                        {"start_time": 0, "per_page": 20, "include": "metric_sets"})  # fmt: skip
    tickets = [t for page in pages for t in page["tickets"]]
    assert len(tickets) == len({t["id"] for t in tickets}) == zd.count("tickets")
    assert len(pages) > 2
    stamps = [t["generated_timestamp"] for t in tickets]
    assert stamps == sorted(stamps)
    for page in pages:
        assert page["before_cursor"] is None and page["before_url"] is None
        assert "count" not in page and "end_time" not in page and "next_page" not in page
        assert {m["ticket_id"] for m in page["metric_sets"]} == {t["id"] for t in page["tickets"]}
        assert "per_page=20" in page["after_url"]
    saved = pages[-1]["after_cursor"]
    assert saved
    # When a ticket is created and another deleted, then the saved cursor is used
    new = api.post("/api/v2/tickets.json",
                   json={"ticket": {"subject": "Renewal", "comment": {"body": "Hi"}}})  # fmt: skip
    new_id = new.json()["ticket"]["id"]
    victim = tickets[0]["id"]
    assert api.delete(f"/api/v2/tickets/{victim}.json").status_code == 204
    too_soon = api.get("/api/v2/incremental/tickets/cursor.json", params={"cursor": saved})
    zd.advance(61)
    resumed = api.get("/api/v2/incremental/tickets/cursor.json", params={"cursor": saved}).json()
    kept = api.get("/api/v2/incremental/tickets/cursor.json",
                   params={"cursor": saved, "exclude_deleted": "true"}).json()  # fmt: skip
    # Then nothing comes within the minute, and afterwards exactly the two changes
    assert too_soon.json()["tickets"] == []
    assert too_soon.json()["end_of_stream"] is True
    assert too_soon.json()["after_cursor"] == saved  # still the position to resume from
    assert {t["id"]: t["status"] for t in resumed["tickets"]} == {victim: "deleted", new_id: "new"}
    assert resumed["end_of_stream"] is True
    assert [t["id"] for t in kept["tickets"]] == [new_id]
    # And the new position moves on: nothing more after it
    after = api.get("/api/v2/incremental/tickets/cursor.json",
                    params={"cursor": resumed["after_cursor"]}).json()  # fmt: skip
    assert after["tickets"] == []


def test_given_the_users_cursor_export_when_paging_then_every_user_once(
    zd: Zd, api: httpx.Client
) -> None:
    pages = _cursor_all(api, "/api/v2/incremental/users/cursor", {"start_time": 0, "per_page": 100})
    ids = [u["id"] for page in pages for u in page["users"]]
    assert len(ids) == len(set(ids)) == zd.count("users", None)
    bad = api.get("/api/v2/incremental/users/cursor", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400


# -- lists [§4] ---------------------------------------------------------------------------------


def test_given_cursor_pagination_when_paging_organizations_then_absolute_links_cover_all(
    zd: Zd, api: httpx.Client
) -> None:
    # Given page[size] percent-encoded, as requests sends it [§10.1]
    resp = api.get("/api/v2/organizations.json?page%5Bsize%5D=25")
    body = resp.json()
    seen = [o["id"] for o in body["organizations"]]
    while body["meta"]["has_more"]:
        assert body["links"]["next"].startswith(f"{zd.url}/api/v2/organizations.json?")
        assert "page%5Bafter%5D=" in body["links"]["next"]
        body = api.get(body["links"]["next"]).json()
        seen += [o["id"] for o in body["organizations"]]
    # Then every live organization comes once, in id order
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == zd.count("organizations")
    assert api.get("/api/v2/organizations.json", params={"page[size]": 101}).status_code == 400
    # And links.prev walks back one page
    last = len(body["organizations"])
    back = api.get(body["links"]["prev"]).json()
    assert [o["id"] for o in back["organizations"]] == seen[-25 - last : -last]


def test_given_offset_pagination_when_paging_users_then_next_page_and_count_until_page_100(
    zd: Zd, api: httpx.Client
) -> None:
    body = api.get("/api/v2/users.json", params={"per_page": 40}).json()
    seen = [u["id"] for u in body["users"]]
    assert body["previous_page"] is None
    while body["next_page"]:
        body = api.get(body["next_page"]).json()
        seen += [u["id"] for u in body["users"]]
    assert body["count"] == len(seen) == len(set(seen)) == zd.count("users")
    past = api.get("/api/v2/users.json", params={"page": 101})
    assert past.status_code == 400
    assert api.get("/api/v2/users.json", params={"page": 100}).status_code == 200


def test_given_lists_of_tickets_metrics_and_ratings_when_read_then_they_match_the_store(
    zd: Zd, api: httpx.Client
) -> None:
    tickets = api.get("/api/v2/tickets.json", params={"page[size]": 100}).json()
    metrics = api.get("/api/v2/ticket_metrics.json", params={"page[size]": 100}).json()
    good = api.get("/api/v2/satisfaction_ratings", params={"page[size]": 100, "score": "good"})
    all_ratings = api.get("/api/v2/satisfaction_ratings", params={"per_page": 100}).json()
    page = all_ratings  # every page of the offset list, under the first page's count
    while page["next_page"]:
        page = api.get(page["next_page"]).json()
        all_ratings["satisfaction_ratings"] += page["satisfaction_ratings"]
    assert tickets["meta"]["has_more"] is True and len(tickets["tickets"]) == 100
    # Ticket metrics: newest ticket first [§4.3]
    created = [m["created_at"] for m in metrics["ticket_metrics"]]
    assert created == sorted(created, reverse=True)
    assert all_ratings["count"] == zd.count("satisfaction_ratings")
    assert {r["score"] for r in good.json()["satisfaction_ratings"]} == {"good"}
    (n_good,) = (
        zd.ctx.store.conn()
        .execute(
            "SELECT COUNT(*) FROM records WHERE vendor = 'zendesk'"
            " AND object = 'satisfaction_ratings' AND json_extract(data, '$.score') = 'good'"
        )
        .fetchone()
    )
    assert len(good.json()["satisfaction_ratings"]) == min(n_good, 100)
    # start_time/end_time filter on creation (Unix seconds)
    pivot = sorted(_unix(r["created_at"]) for r in all_ratings["satisfaction_ratings"])[10]
    since = api.get("/api/v2/satisfaction_ratings", params={"start_time": pivot}).json()
    assert all(_unix(r["created_at"]) >= pivot for r in since["satisfaction_ratings"])
    assert since["count"] == sum(
        1 for r in all_ratings["satisfaction_ratings"] if _unix(r["created_at"]) >= pivot
    )
    # A ticket's inline rating names the rating record
    rated = next(t for t in _all_tickets(api) if t["satisfaction_rating"])
    rid = rated["satisfaction_rating"]["id"]
    one = api.get(f"/api/v2/satisfaction_ratings/{rid}.json").json()["satisfaction_rating"]
    assert one["ticket_id"] == rated["id"]
    assert one["score"] == rated["satisfaction_rating"]["score"]
    metric = api.get(f"/api/v2/tickets/{rated['id']}/metrics.json").json()["ticket_metric"]
    assert metric["ticket_id"] == rated["id"]
    assert metric["solved_at"] is not None


def _all_tickets(api: httpx.Client) -> list[dict[str, Any]]:
    body = api.get("/api/v2/tickets.json", params={"page[size]": 100}).json()
    out = list(body["tickets"])
    while body["meta"]["has_more"]:
        body = api.get(body["links"]["next"]).json()
        out += body["tickets"]
    return out


def test_given_show_many_when_asking_known_and_unknown_ids_then_unknown_are_left_out(
    zd: Zd, api: httpx.Client
) -> None:
    known = _org_ids(zd, 3)
    resp = api.get("/api/v2/organizations/show_many.json",
                   params={"ids": ",".join(map(str, [*known, 42]))})  # fmt: skip
    assert [o["id"] for o in resp.json()["organizations"]] == known
    too_many = api.get("/api/v2/organizations/show_many.json",
                       params={"ids": ",".join(str(i) for i in range(1, 102))})  # fmt: skip
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "TooManyValues"


def test_given_the_field_lists_then_the_seeded_organization_fields_and_system_ticket_fields(
    api: httpx.Client,
) -> None:
    fields = api.get("/api/v2/organization_fields.json").json()
    types = {f["key"]: f["type"] for f in fields["organization_fields"]}
    assert types == {"arr": "decimal", "seats": "integer", "plan": "dropdown",
                     "renewal_date": "date", "customer_since": "date"}  # fmt: skip
    plan = next(f for f in fields["organization_fields"] if f["key"] == "plan")
    assert [o["value"] for o in plan["custom_field_options"]] == ["starter", "growth", "enterprise"]
    assert fields["count"] == 5 and fields["next_page"] is None
    paged = api.get("/api/v2/organization_fields", params={"page[size]": 2}).json()
    assert len(paged["organization_fields"]) == 2 and paged["meta"]["has_more"] is True
    rest = api.get(paged["links"]["next"]).json()
    assert [f["key"] for f in rest["organization_fields"]] == ["plan", "renewal_date"]
    assert api.get("/api/v2/user_fields.json").json()["user_fields"] == []
    assert len(api.get("/api/v2/ticket_fields.json").json()["ticket_fields"]) == 7


# -- writes [§7] --------------------------------------------------------------------------------


def test_given_a_single_update_then_fields_merge_updated_at_moves_and_bad_values_are_422(
    zd: Zd, api: httpx.Client
) -> None:
    oid = _org_ids(zd, 1)[0]
    before = _org(api, oid)
    zd.advance(5)
    resp = api.put(
        f"/api/v2/organizations/{oid}.json",
        json={"organization": {"id": oid, "notes": "Scored", "organization_fields": {
            "seats": "12", "plan": "enterprise", "renewal_date": "2027-01-31", "nope": 1}}},
    )  # fmt: skip
    assert resp.status_code == 200
    org = resp.json()["organization"]
    fields = org["organization_fields"]
    assert fields["seats"] == 12 and fields["plan"] == "enterprise"
    assert fields["renewal_date"] == "2027-01-31T00:00:00+00:00"
    assert fields["arr"] == before["organization_fields"]["arr"]  # untouched keys stay
    assert "nope" not in fields
    assert org["notes"] == "Scored"
    assert resp.headers["x-zendesk-api-warn"] == "Unpermitted parameters: id"
    assert int(zd.ctx.clock.time()) - 1 <= _unix(org["updated_at"]) <= int(zd.ctx.clock.time())
    assert _unix(org["updated_at"]) > _unix(before["updated_at"])
    row = zd.store.get("zendesk", "organizations", str(oid))
    assert row is not None and row[3] // 1000 == _unix(org["updated_at"])
    assert _org(api, oid) == org
    bad = api.put(f"/api/v2/organizations/{oid}.json",
                  json={"organization": {"organization_fields": {"plan": "platinum"}}})  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["error"] == "RecordInvalid"
    assert bad.json()["details"]["plan"][0]["error"] == "InvalidValue"
    missing = api.put("/api/v2/organizations/1.json", json={"organization": {"notes": "x"}})
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_given_strict_custom_fields_when_writing_an_unknown_key_then_422_instead_of_ignored(
    make_zd: MakeZd,
) -> None:
    strict, lenient = make_zd(options={"strict_custom_fields": True}), make_zd()
    body = {"organization": {"organization_fields": {"health_scor": 5}}}
    for zd, status in ((strict, 422), (lenient, 200)):
        oid = _org_ids(zd, 1)[0]
        with zd.client() as api:
            resp = api.put(f"/api/v2/organizations/{oid}.json", json=body)
        assert resp.status_code == status
    assert resp.json()["organization"]["organization_fields"].keys() == {
        "arr", "seats", "plan", "renewal_date", "customer_since"}  # fmt: skip


def test_given_update_many_when_time_passes_then_the_job_goes_queued_working_completed(
    make_zd: MakeZd,
) -> None:
    # A 10 s job: the checks below stay clear of its half-way and due times on a slow machine
    zd = make_zd(options={"job_delay_seconds": 10})
    api = zd.client()
    a, b, c = _org_ids(zd, 3)
    taken = _org(api, c)["name"]
    body = {"organizations": [
        {"id": a, "organization_fields": {"seats": 77}},
        {"id": 999, "notes": "unknown"},
        {"id": b, "name": taken},
        {"id": c, "organization_fields": {"arr": 1234.5}},
    ]}  # fmt: skip
    resp = api.put("/api/v2/organizations/update_many.json", json=body)
    assert resp.status_code == 200
    job = resp.json()["job_status"]
    assert job["status"] == "queued"
    assert (job["progress"], job["total"], job["results"]) == (None, 4, None)
    assert job["url"] == f"{zd.url}/api/v2/job_statuses/{job['id']}.json"
    # Nothing is written while the job is queued
    assert _org(api, a)["organization_fields"]["seats"] != 77
    zd.advance(6)
    working = api.get(f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
    assert working["status"] == "working"
    assert 0 <= working["progress"] < 4
    zd.advance(5)
    done = api.get(job["url"]).json()["job_status"]
    assert done["status"] == "completed"
    assert done["progress"] == 4
    assert done["message"].startswith("Completed at ") and done["message"].endswith(" +0000")
    ok, unknown, duplicate, ok2 = done["results"]
    assert ok == {"action": "update", "id": a, "status": "Updated", "success": True}
    assert ok2["success"] is True
    assert unknown["index"] == 1 and unknown["error"] == "OrganizationUpdateFailed"
    assert "success" not in unknown
    assert duplicate == {"index": 2, "error": "OrganizationUpdateFailed", "id": b,
                         "details": f"Name:  {taken} has already been taken"}  # fmt: skip
    assert _org(api, a)["organization_fields"]["seats"] == 77
    assert _org(api, c)["organization_fields"]["arr"] == 1234.5
    # The bulk form: one change for several ids
    bulk = api.put("/api/v2/organizations/update_many.json", params={"ids": f"{a},{b}"},
                   json={"organization": {"notes": "bulk"}}).json()["job_status"]  # fmt: skip
    assert [r["success"] for r in _finish_jobs(zd, api, [bulk["id"]])[0]["results"]] == [True] * 2
    # A job status is kept one day
    zd.advance(86_401)
    assert api.get(job["url"]).status_code == 404


def test_given_more_than_100_items_or_30_jobs_in_flight_then_too_many_values_or_jobs(
    make_zd: MakeZd,
) -> None:
    zd = make_zd(options={"job_delay_seconds": 60})  # none finishes while 30 are queued
    api = zd.client()
    oid = _org_ids(zd, 1)[0]
    items = [{"id": oid, "notes": str(i)} for i in range(101)]
    too_many = api.put("/api/v2/organizations/update_many.json", json={"organizations": items})
    assert too_many.status_code == 400
    assert too_many.json() == {
        "error": "TooManyValues",
        "description": "Parameter  cannot specify more than 100 values",  # sic [§7.2]
        "max_count": 100,
    }
    one = {"organizations": [{"id": oid, "notes": "x"}]}
    jobs = [api.put("/api/v2/organizations/update_many.json", json=one) for _ in range(30)]
    assert all(j.status_code == 200 for j in jobs)
    refused = api.put("/api/v2/organizations/update_many.json", json=one)
    assert refused.status_code == 429
    assert refused.json()["error"] == "TooManyJobs"
    assert len(refused.json()["current_job_ids"]) == 30
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    zd.advance(61)
    assert api.put("/api/v2/organizations/update_many.json", json=one).status_code == 200


def test_given_organization_field_writes_then_create_duplicate_update_delete(
    zd: Zd, api: httpx.Client
) -> None:
    spec = {"type": "integer", "key": "health_score", "title": "Health score"}
    created = api.post("/api/v2/organization_fields.json", json={"organization_field": spec})
    assert created.status_code == 201
    field = created.json()["organization_field"]
    assert (field["key"], field["type"], field["active"], field["system"]) == (
        "health_score", "integer", True, False)  # fmt: skip
    assert created.headers["Location"] == field["url"]
    duplicate = api.post("/api/v2/organization_fields.json", json={"organization_field": spec})
    assert duplicate.status_code == 422
    assert duplicate.json()["details"]["key"] == [
        {"description": "Key: has already been taken", "error": "DuplicateValue"}
    ]
    for bad_key in ("123", "has space", ""):
        bad = api.post("/api/v2/organization_fields.json",
                       json={"organization_field": {**spec, "key": bad_key}})  # fmt: skip
        assert bad.status_code == 422, bad_key
    # The new field is writable on organizations and shows null where unset
    a, b = _org_ids(zd, 2)
    api.put(f"/api/v2/organizations/{a}.json",
            json={"organization": {"organization_fields": {"health_score": 64}}})  # fmt: skip
    assert _org(api, a)["organization_fields"]["health_score"] == 64
    assert _org(api, b)["organization_fields"]["health_score"] is None
    renamed = api.put("/api/v2/organization_fields/health_score.json",
                      json={"organization_field": {"title": "Health"}})  # fmt: skip
    assert renamed.json()["organization_field"]["title"] == "Health"
    by_id = api.get(f"/api/v2/organization_fields/{field['id']}").json()
    assert by_id["organization_field"]["title"] == "Health"
    assert api.delete(f"/api/v2/organization_fields/{field['id']}.json").status_code == 204
    assert api.get("/api/v2/organization_fields/health_score.json").status_code == 404
    assert "health_score" not in _org(api, a)["organization_fields"]


def test_given_a_rejected_dropdown_field_when_the_next_is_created_then_no_option_ids_were_spent(
    zd: Zd, api: httpx.Client
) -> None:
    # Given a dropdown field, and the same create sent again (a retry after a lost answer)
    def dropdown(key: str) -> dict[str, Any]:
        options = [{"name": "At risk", "value": "at_risk"}, {"name": "Healthy", "value": "healthy"}]
        return {"organization_field": {"type": "dropdown", "key": key, "title": key,
                                       "custom_field_options": options}}  # fmt: skip

    first = api.post("/api/v2/organization_fields.json", json=dropdown("health_band"))
    assert first.status_code == 201
    assert (
        api.post("/api/v2/organization_fields.json", json=dropdown("health_band")).status_code
        == 422
    )
    # when another dropdown field is created
    second = api.post("/api/v2/organization_fields.json", json=dropdown("health_trend"))
    # then its options take the ids right after the first field's: the rejected request took none
    ids = [
        o["id"]
        for r in (first, second)
        for o in r.json()["organization_field"]["custom_field_options"]
    ]
    assert ids == list(range(ids[0], ids[0] + 4))


def test_given_idempotency_key_when_creating_a_ticket_twice_then_hit_and_a_changed_body_is_400(
    zd: Zd, api: httpx.Client
) -> None:
    requester = next(
        u for u in api.get("/api/v2/users.json").json()["users"] if u["role"] == "end-user"
    )
    ticket = {"ticket": {"subject": "Renewal call", "comment": {"body": "Let's talk."},
                         "requester_id": requester["id"], "type": "task",
                         "due_at": "2027-01-31T00:00:00Z", "priority": "high",
                         "external_id": "follow-up-1", "tags": ["Health"]}}  # fmt: skip
    headers = {"Idempotency-Key": "follow-up-1"}
    first = api.post("/api/v2/tickets.json", json=ticket, headers=headers)
    replay = api.post("/api/v2/tickets.json", json=ticket, headers=headers)
    changed = api.post("/api/v2/tickets.json", json={"ticket": {**ticket["ticket"],
                       "subject": "Other"}}, headers=headers)  # fmt: skip
    assert first.status_code == replay.status_code == 201
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert replay.headers["x-idempotency-lookup"] == "hit"
    assert replay.json() == first.json()
    assert changed.status_code == 400
    assert changed.json()["error"] == "IdempotentRequestError"
    created = first.json()["ticket"]
    assert first.headers["Location"] == created["url"]
    assert first.json()["audit"]["ticket_id"] == created["id"]
    assert (created["type"], created["due_at"], created["status"]) == (
        "task", "2027-01-31T00:00:00Z", "new")  # fmt: skip
    assert created["organization_id"] == requester["organization_id"]
    assert created["tags"] == ["health"]
    assert "generated_timestamp" not in created
    found = api.get("/api/v2/tickets.json", params={"external_id": "follow-up-1"}).json()
    assert [t["id"] for t in found["tickets"]] == [created["id"]]
    # After the key's 2 hours, the same key creates anew
    zd.advance(7_201)
    fresh = api.post("/api/v2/tickets.json", json=ticket, headers=headers)
    assert fresh.headers["x-idempotency-lookup"] == "miss"
    assert fresh.json()["ticket"]["id"] != created["id"]
    blank = api.post("/api/v2/tickets.json", json={"ticket": {"subject": "No comment"}})
    assert blank.status_code == 422
    assert blank.json()["details"]["description"][0]["error"] == "BlankValue"


def test_given_a_deleted_ticket_when_read_or_deleted_again_then_404(api: httpx.Client) -> None:
    tid = _all_tickets(api)[0]["id"]
    assert api.get(f"/api/v2/tickets/{tid}.json").status_code == 200
    assert api.delete(f"/api/v2/tickets/{tid}.json", headers={}).status_code == 204
    for resp in (api.get(f"/api/v2/tickets/{tid}.json"), api.delete(f"/api/v2/tickets/{tid}"),
                 api.get(f"/api/v2/tickets/{tid}/metrics.json")):  # fmt: skip
        assert resp.status_code == 404
        assert resp.json() == {"error": "RecordNotFound", "description": "Not found"}
    assert tid not in {t["id"] for t in _all_tickets(api)}


def test_given_bad_requests_then_zendesk_shaped_errors(zd: Zd, api: httpx.Client) -> None:
    oid = _org_ids(zd, 1)[0]
    malformed = api.put(f"/api/v2/organizations/{oid}.json", content=b'{"organization": ',
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert malformed.status_code == 400
    assert set(malformed.json()) == {"error", "description"}
    unknown = api.get("/api/v2/nothing_here.json")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "InvalidEndpoint"
    zd.ctx.faults.add(Fault(kind="server_error", vendor="zendesk", status=500, max_times=1))
    failed = api.get("/api/v2/organizations.json")
    assert failed.status_code == 500
    assert set(failed.json()) == {"error", "description"}
    assert api.get("/api/v2/organizations.json").status_code == 200


# -- rate limits [§2] ---------------------------------------------------------------------------


def _start_of_minute(zd: Zd) -> None:
    """Move the sandbox clock to just after a minute boundary: windows are per minute."""
    zd.advance(60 - zd.ctx.clock.time() % 60 + 0.01)


def test_given_rate_limits_when_exporting_eleven_times_in_a_minute_then_429_until_it_passes(
    make_zd: MakeZd,
) -> None:
    zd = make_zd(rate_limits="real")
    _start_of_minute(zd)
    with zd.client() as api:
        ok = [api.get("/api/v2/incremental/organizations.json?start_time=0") for _ in range(10)]
        over = api.get("/api/v2/incremental/tickets.json?start_time=0")
        # The users cursor export has its own allocation [§2.3]
        users = api.get("/api/v2/incremental/users/cursor.json?start_time=0")
        zd.advance(60)
        again = api.get("/api/v2/incremental/organizations.json?start_time=0")
    assert all(r.status_code == 200 for r in ok)
    assert ok[0].headers["X-Rate-Limit"] == "700"
    assert int(ok[0].headers["X-Rate-Limit-Remaining"]) == 699
    assert ok[0].headers["ratelimit-limit"] == "700"
    assert 1 <= int(ok[0].headers["ratelimit-reset"]) <= 60
    assert over.status_code == 429
    assert over.json() == {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed incremental export API requests per minute exceeded",
    }
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert users.status_code == 200
    assert users.headers["Zendesk-RateLimit-incremental-exports-cursor"].startswith(
        "total=20; remaining=19; resets="
    )
    assert again.status_code == 200


def test_given_rate_limits_when_updating_one_organization_six_times_a_minute_then_429(
    make_zd: MakeZd,
) -> None:
    zd = make_zd(rate_limits="real")
    _start_of_minute(zd)
    a, b = _org_ids(zd, 2)
    body = {"organization": {"notes": "n"}}
    with zd.client() as api:
        five = [api.put(f"/api/v2/organizations/{a}.json", json=body) for _ in range(5)]
        sixth = api.put(f"/api/v2/organizations/{a}.json", json=body)
        other = api.put(f"/api/v2/organizations/{b}.json", json=body)
    assert [r.status_code for r in five] == [200] * 5
    assert sixth.status_code == 429
    assert sixth.json() == {"errors": [{"code": "TooManyRequests",
                                        "title": "Too many requests to update"}]}  # fmt: skip
    assert int(sixth.headers["Retry-After"]) >= 1
    assert other.status_code == 200


def test_given_the_account_limit_when_exceeded_then_429_plain_text_with_retry_after(
    make_zd: MakeZd,
) -> None:
    zd = make_zd(rate_limits="real", options={"account_limit_per_minute": 3})
    _start_of_minute(zd)
    with zd.client() as api:
        calls = [api.get("/api/v2/users/me.json") for _ in range(4)]
    assert [r.status_code for r in calls] == [200, 200, 200, 429]
    assert calls[-1].text == "Number of allowed API requests per minute exceeded"
    assert 1 <= int(calls[-1].headers["Retry-After"]) <= 60
    assert calls[-1].headers["X-Rate-Limit-Remaining"] == "0"


def test_given_rate_limits_off_then_nothing_is_enforced_or_advertised(api: httpx.Client) -> None:
    calls = [api.get("/api/v2/incremental/users.json?start_time=0") for _ in range(12)]
    assert all(r.status_code == 200 for r in calls)
    assert "X-Rate-Limit" not in calls[0].headers
    assert "ratelimit-remaining" not in calls[0].headers


def test_given_waits_in_these_tests_then_the_sandbox_clock_moves_not_the_wall_clock(
    zd: Zd, api: httpx.Client, no_wall_clock_sleep: list[float]
) -> None:
    # Given a job that needs a second of sandbox time
    oid = _org_ids(zd, 1)[0]
    body = {"organizations": [{"id": oid, "notes": "t"}]}
    job = api.put("/api/v2/organizations/update_many.json", json=body).json()["job_status"]
    offset = zd.ctx.clock.offset
    # When the test waits for it by advancing the clock
    (status,) = _finish_jobs(zd, api, [job["id"]])
    # Then it completed without any wall-clock sleep
    assert status["status"] == "completed"
    assert zd.ctx.clock.offset > offset
    assert no_wall_clock_sleep == []
