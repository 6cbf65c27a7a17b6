"""The Zendesk emulator driven by zenpy (PyPI ``zenpy``, code no one here wrote), pointed at the
sandbox with ``ZENPY_FORCE_NETLOC`` / ``ZENPY_FORCE_SCHEME`` [zendesk/API.md §10.1]. Every test
reads its outcome back through the API and compares it with what was written or seeded."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx
import pytest
import test_zendesk_emulator as contract
from test_zendesk_emulator import CREDS, MakeZd, Zd

from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED

zenpy = pytest.importorskip("zenpy")
from zenpy import Zenpy  # noqa: E402
from zenpy.lib.api_objects import Organization, OrganizationField, Ticket  # noqa: E402
from zenpy.lib.exception import RecordNotFoundException  # noqa: E402

# The sandbox fixtures (a seeded copy per test, no wall-clock sleeps) of the contract tests.
seeded_db = contract.seeded_db
make_zd = contract.make_zd
zd = contract.zd
no_wall_clock_sleep = contract.no_wall_clock_sleep


def _zenpy(zd: Zd, monkeypatch: pytest.MonkeyPatch) -> Zenpy:
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", urllib.parse.urlsplit(zd.url).netloc)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    # zenpy waits out a 429's Retry-After with time.sleep(1) per second [zendesk/API.md §10.4]:
    # those waits move the sandbox clock instead.
    monkeypatch.setattr("zenpy.lib.api.sleep", zd.ctx.clock.sleep)
    return Zenpy(subdomain="sandbox", email=CREDS["email"], token=CREDS["api_token"],
                 disable_cache=True)  # fmt: skip


@pytest.fixture
def zen(zd: Zd, monkeypatch: pytest.MonkeyPatch) -> Zenpy:
    return _zenpy(zd, monkeypatch)


def _ids(zd: Zd, obj: str, states: tuple[int, ...] = (LIVE,)) -> set[int]:
    marks = ",".join("?" * len(states))
    rows = zd.store.conn().execute(
        f"SELECT id FROM records WHERE vendor = 'zendesk' AND object = ? AND state IN ({marks})",
        (obj, *states),
    )
    return {int(r[0]) for r in rows}


def _api(zd: Zd) -> httpx.Client:
    return zd.client()


def test_given_zenpy_when_listing_every_collection_then_it_reads_what_the_store_holds(
    zd: Zd,
    zen: Zenpy,
) -> None:
    # CBP lists (page[size]=100, links.next) and the offset list of organization fields
    assert {o.id for o in zen.organizations()} == _ids(zd, "organizations")
    assert {u.id for u in zen.users()} == _ids(zd, "users")
    assert {t.id for t in zen.tickets()} == _ids(zd, "tickets")
    assert {m.id for m in zen.ticket_metrics()} == _ids(zd, "ticket_metrics")
    ratings = list(zen.satisfaction_ratings())
    assert {r.id for r in ratings} == _ids(zd, "satisfaction_ratings")
    assert {r.score for r in zen.satisfaction_ratings(score="bad")} == {"bad"}
    fields = {f.key: f.type for f in zen.organization_fields()}
    assert fields == {"arr": "decimal", "seats": "integer", "plan": "dropdown",
                      "renewal_date": "date", "customer_since": "date"}  # fmt: skip
    org = next(iter(zen.organizations()))
    assert set(org.organization_fields) == set(fields)


def test_given_zenpy_incremental_exports_then_every_seeded_ticket_and_user_is_read(
    zd: Zd,
    zen: Zenpy,
) -> None:
    everything = (LIVE, ARCHIVED, MERGED)
    # Cursor-based (zenpy's default): follows after_url until end_of_stream
    tickets = list(zen.tickets.incremental(start_time=0))
    assert len(tickets) == len({t.id for t in tickets}) == len(_ids(zd, "tickets", everything))
    users = list(zen.users.incremental(start_time=0))
    assert {u.id for u in users} == _ids(zd, "users", everything)
    assert {u.id for u in users if not u.active} == _ids(zd, "users", (ARCHIVED, MERGED))
    # Time-based: pages overlap at the boundary second, so dedupe by id [zendesk/API.md §9]
    by_time = list(zen.tickets.incremental(start_time=0, paginate_by_time=True, per_page=40))
    assert {t.id for t in by_time} == _ids(zd, "tickets", everything)
    assert len(by_time) >= len(tickets)


def test_given_zenpy_organizations_incremental_from_zero_then_all_organizations_are_read(
    zd: Zd,
    zen: Zenpy,
) -> None:
    # zenpy stops a time-based export once end_time is within 5 minutes of its clock
    # [zendesk/API.md §10.3]; the seeded world ends weeks ago, so every page is read.
    orgs = list(zen.organizations.incremental(start_time=0))
    assert {o.id for o in orgs} == _ids(zd, "organizations", (LIVE, MERGED, PURGED))
    assert sum(1 for o in orgs if getattr(o, "deleted_at", None)) == 1


def test_given_zenpy_users_me_then_the_credentials_user(zen: Zenpy) -> None:
    me = zen.users.me()
    assert me.email == CREDS["email"]
    assert me.role == "admin"


def test_given_zenpy_when_creating_an_organization_field_then_it_is_listed_and_writable(
    zd: Zd,
    zen: Zenpy,
) -> None:
    created = zen.organization_fields.create(
        OrganizationField(type="decimal", key="health_score", title="Health score")
    )
    assert created.key == "health_score" and created.id
    assert "health_score" in {f.key for f in zen.organization_fields()}
    org = next(iter(zen.organizations()))
    org.organization_fields["health_score"] = 71.5
    zen.organizations.update(org)
    with _api(zd) as api:
        read = api.get(f"/api/v2/organizations/{org.id}.json").json()["organization"]
    assert read["organization_fields"]["health_score"] == 71.5


def test_given_zenpy_when_updating_one_organization_then_the_values_read_back(
    zd: Zd,
    zen: Zenpy,
) -> None:
    oid = min(_ids(zd, "organizations"))
    org = zen.organizations(id=oid)
    before = dict(org.organization_fields)
    org.notes = "Health: at risk"
    org.organization_fields["seats"] = 99
    updated = zen.organizations.update(org)
    assert isinstance(updated, Organization)
    assert updated.notes == "Health: at risk"
    again = zen.organizations(id=oid)
    assert again.notes == "Health: at risk"
    assert again.organization_fields["seats"] == 99
    # zenpy sends the whole dict back: the other values survive the round trip
    assert {k: v for k, v in again.organization_fields.items() if k != "seats"} == {
        k: v for k, v in before.items() if k != "seats"
    }


def test_given_zenpy_when_updating_a_list_then_a_job_completes_after_sandbox_time(
    zd: Zd,
    zen: Zenpy,
) -> None:
    oids = sorted(_ids(zd, "organizations"))[:3]
    orgs = [zen.organizations(id=oid) for oid in oids]
    for n, org in enumerate(orgs):
        org.organization_fields["seats"] = 500 + n
    job = zen.organizations.update(orgs)  # PUT update_many.json
    assert job.status == "queued" and job.total == 3
    zd.advance(float(zd.app.options["job_delay_seconds"]) + 0.01)
    done = zen.job_status(id=job.id)
    assert done.status == "completed" and done.progress == 3
    assert [r["id"] for r in _results(done)] == oids
    assert [zen.organizations(id=o).organization_fields["seats"] for o in oids] == [500, 501, 502]


def _results(job: Any) -> list[dict[str, Any]]:
    return [r if isinstance(r, dict) else r.to_dict() for r in job.results]


def test_given_zenpy_when_creating_then_deleting_a_ticket_then_it_reads_as_not_found(
    zd: Zd,
    zen: Zenpy,
) -> None:
    requester = next(u for u in zen.users() if u.role == "end-user")
    audit = zen.tickets.create(
        Ticket(subject="Renewal at risk", description="Call the customer",
               requester_id=requester.id, type="task", due_at="2027-02-01T00:00:00Z")
    )  # fmt: skip
    ticket = audit.ticket
    assert ticket.id and ticket.subject == "Renewal at risk"
    read = zen.tickets(id=ticket.id)
    assert read.type == "task"
    assert read.requester_id == requester.id
    assert read.organization_id == requester.organization_id
    with _api(zd) as api:
        raw = api.get(f"/api/v2/tickets/{ticket.id}.json").json()["ticket"]
    assert (raw["type"], raw["due_at"], raw["description"]) == (
        "task", "2027-02-01T00:00:00Z", "Call the customer")  # fmt: skip
    resp = zen.tickets.delete(ticket)  # DELETE with a body; 204
    assert resp.status_code == 204
    with pytest.raises(RecordNotFoundException):
        zen.tickets(id=ticket.id)


def test_given_a_429_with_retry_after_when_zenpy_exports_then_it_waits_and_succeeds(
    make_zd: MakeZd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given one incremental export per minute, the first one spent
    zd_ = make_zd(rate_limits="real", options={"export_limit_per_minute": 1})
    zd_.advance(60 - zd_.ctx.clock.time() % 60 + 0.01)
    zen = _zenpy(zd_, monkeypatch)
    first = {o.id for o in zen.organizations.incremental(start_time=0)}
    offset = zd_.ctx.clock.offset
    # When zenpy exports again within the minute
    second = {o.id for o in zen.organizations.incremental(start_time=0)}
    # Then it got a 429, waited Retry-After on the (sandbox) clock and read everything
    assert second == first == _ids(zd_, "organizations", (LIVE, MERGED, PURGED))
    waited = zd_.ctx.clock.offset - offset
    assert 1 <= waited <= 60
    statuses = zd_.ctx.stats.snapshot()["vendors"]["zendesk"]["statuses"]
    assert statuses == {"200": 2, "429": 1}  # export, 429, the retried export
