"""Retention programs end to end: a band transition into at-risk makes one follow-up for the
account owner in each CRM that holds the account, once per transition, and rollback removes it.

Given a sandbox with the three CRMs and the store target-health filled and measured from tap-crm's
output (test_writeback.pipeline), and an earlier snapshot of the same model written into the
scores table (so that chosen accounts move from healthy into at_risk), then:
- each of their live CRM records gets exactly one follow-up, seen through the vendor's API with
  the run's marker and, in HubSpot and Salesforce, the record's owner; a rerun makes none;
- an account's first snapshot, an unchanged band, or a move outside the rule's bands make none;
- a crash after the journal's "pending" (before or after the create call), or a create whose
  answer was lost on the wire, then reruns, still leave exactly one per record;
- rollback deletes them (resolving a pending one by lookup), and is idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tapkit import CREATE_ROUTES
from test_writeback import AS_OF, pipeline

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault
from target_health.store import Store
from target_health.writeback import programs
from target_health.writeback.crm import CrmWriter, writers

PREVIOUS = str(dt.date.fromisoformat(AS_OF) - dt.timedelta(days=30))
RULE = "into:at_risk,critical"  # the default rule's name
DELETE_ROUTES = {
    "hubspot": ("DELETE", "/crm/v3/objects/tasks/*"),
    "salesforce": ("DELETE", "/services/data/*/sobjects/Task/*"),
    "intercom": ("POST", "/tags"),
}


class Crash(BaseException):
    """The process dying at that point (not an error the code may handle)."""


class CrashOnce:
    """A real adapter that dies once per record, just before or just after its create call."""

    def __init__(self, inner: CrmWriter, before: set[str], after: set[str]) -> None:
        self.inner = inner
        self.crm = inner.crm
        self.followup_kind = inner.followup_kind
        self.before, self.after = before, after
        self.crashed: set[str] = set()

    def create_followup(self, record_id: str, subject: str, body: str, **kw: Any) -> str:
        if record_id in self.before and record_id not in self.crashed:
            self.crashed.add(record_id)
            raise Crash(record_id)
        object_id = self.inner.create_followup(record_id, subject, body, **kw)
        if record_id in self.after and record_id not in self.crashed:
            self.crashed.add(record_id)
            raise Crash(record_id)
        return object_id

    def find_followup(self, record_id: str, marker: str) -> str | None:
        return self.inner.find_followup(record_id, marker)

    def delete_followup(self, object_id: str) -> bool:
        return self.inner.delete_followup(object_id)


# -- Given: snapshots ------------------------------------------------------------------------------


def _version(store: Store) -> str:
    (version,) = {v for (v,) in store.query("SELECT model_version FROM scores")}
    return str(version)


def _accounts_by_crm(store: Store) -> dict[str, list[str]]:
    """Scored accounts with a live record in each CRM, in key order."""
    out: dict[str, list[str]] = {}
    for crm, key in store.query(
        "SELECT DISTINCT r.crm, r.account_ref FROM records r JOIN scores s"
        " ON s.account_key = r.account_ref AND s.as_of = {p}"
        " WHERE r.entity = 'account' AND r.deleted = 0 ORDER BY r.account_ref",
        (AS_OF,),
    ):
        out.setdefault(str(crm), []).append(str(key))
    return out


def _pick(store: Store, per_crm: int, skip: Sequence[str] = ()) -> list[str]:
    """``per_crm`` accounts for each CRM, none of them in ``skip``."""
    chosen: list[str] = []
    for keys in _accounts_by_crm(store).values():
        free = [k for k in keys if k not in skip and k not in chosen]
        assert len(free) >= per_crm
        chosen += free[:per_crm]
    return chosen


def _records(store: Store, accounts: list[str]) -> list[tuple[str, str]]:
    """(crm, record id) of the accounts' live records."""
    rows = store.query(
        "SELECT crm, key, account_ref FROM records WHERE entity = 'account' AND deleted = 0"
    )
    return sorted((str(c), str(k).split(":", 2)[2]) for c, k, a in rows if a in accounts)


def _earlier_snapshot(store: Store, moved: Sequence[str] = (), stay: Sequence[str] = ()) -> None:
    """Copy this snapshot to PREVIOUS (same model), then ``moved`` accounts go from healthy to
    at_risk, and ``stay`` accounts are at_risk in both."""
    with store.transaction() as tx:
        tx.execute(
            store.sql(
                "INSERT INTO scores (account_key, as_of, model_version, score, band, segment,"
                " trend, nps, nps_responses, churned_on, factors, detail)"
                " SELECT account_key, {p}, model_version, score, band, segment, trend, nps,"
                " nps_responses, churned_on, factors, detail FROM scores WHERE as_of = {p}"
            ),
            (PREVIOUS, AS_OF),
        )
        update = store.sql("UPDATE scores SET band = {p} WHERE account_key = {p} AND as_of = {p}")
        for key in moved:
            tx.execute(update, ("healthy", key, PREVIOUS))
            tx.execute(update, ("at_risk", key, AS_OF))
        for key in stay:
            tx.execute(update, ("at_risk", key, PREVIOUS))
            tx.execute(update, ("at_risk", key, AS_OF))


# -- the CRMs, through their APIs ------------------------------------------------------------------


def _count(sandbox: Sandbox, routes: dict[str, tuple[str, str]]) -> None:
    for crm, (method, path) in routes.items():
        sandbox.ctx.faults.add(Fault("slow", vendor=crm, method=method, path=path, delay=0))


def _calls(sandbox: Sandbox, routes: dict[str, tuple[str, str]]) -> dict[str, int]:
    seen = {
        (f["vendor"], f["method"], f["path"]): f["matched"]
        for f in sandbox.ctx.faults.list()
        if f["kind"] == "slow"
    }
    return {crm: seen.get((crm, m, p), 0) for crm, (m, p) in routes.items()}


def _followups(
    adapter: Any, record_id: str, marker: str
) -> tuple[list[tuple[str, str | None]], str | None]:
    """The follow-ups on a record whose subject holds ``marker``, as (id, owner), and the
    record's owner, read through the vendor's API (not the adapter's own lookup)."""
    api = adapter.client.api
    if adapter.crm == "hubspot":
        company = api.request(
            "GET",
            f"/crm/v3/objects/companies/{record_id}",
            params={"properties": "hubspot_owner_id"},
        )
        links = api.request("GET", f"/crm/v3/objects/companies/{record_id}/associations/tasks")
        ids = [r["id"] for r in links["results"]]
        tasks = []
        if ids:
            tasks = api.request(
                "POST",
                "/crm/v3/objects/tasks/batch/read",
                json={"properties": ["hs_task_subject", "hubspot_owner_id"],
                      "inputs": [{"id": i} for i in ids]},
                idempotent=True,
            )["results"]  # fmt: skip
        mine = [
            (t["id"], t["properties"].get("hubspot_owner_id"))
            for t in tasks
            if marker in (t["properties"].get("hs_task_subject") or "")
        ]
        return mine, company["properties"].get("hubspot_owner_id")
    if adapter.crm == "salesforce":
        owner = adapter.client.query(f"SELECT OwnerId FROM Account WHERE Id = '{record_id}'")
        rows = adapter.client.query(
            f"SELECT Id, OwnerId, Subject FROM Task WHERE WhatId = '{record_id}'"
        ).records
        mine = [(r["Id"], r["OwnerId"]) for r in rows if marker in (r["Subject"] or "")]
        return mine, owner.records[0]["OwnerId"]
    company = api.request("GET", f"/companies/{record_id}")
    tags = company["tags"]["tags"]
    return [(f"{record_id}/{t['id']}", None) for t in tags if marker in t["name"]], None


def _assert_one_each(config: dict[str, Any], records: list[tuple[str, str]], marker: str) -> None:
    """Exactly one follow-up per record, for the record's owner (HubSpot, Salesforce)."""
    for adapter in writers(config):
        with adapter:
            for crm, rid in records:
                if crm != adapter.crm:
                    continue
                found, owner = _followups(adapter, rid, marker)
                assert len(found) == 1, (crm, rid, len(found))
                if crm != "intercom":
                    assert owner and found[0][1] == owner, (crm, rid)


def _assert_none(config: dict[str, Any], records: list[tuple[str, str]], marker: str) -> None:
    for adapter in writers(config):
        with adapter:
            for crm, rid in records:
                if crm == adapter.crm:
                    assert _followups(adapter, rid, marker)[0] == [], (crm, rid)


def _journal(store: Store) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (str(c), str(r)): (str(s), o)
        for c, r, s, o in store.query("SELECT crm, record_id, state, object_id FROM wb_programs")
    }


# -- tests -----------------------------------------------------------------------------------------


def test_a_transition_makes_one_followup_for_the_owner_per_record_and_a_rerun_none(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        version = _version(store)
        # Given one account per CRM moving from healthy into at_risk, and one staying at_risk
        moved = _pick(store, 1)
        (stay,) = _pick(store, 1, moved)[:1]
        _earlier_snapshot(store, moved, [stay])
        records = _records(store, moved)
        assert {crm for crm, _ in records} == {"hubspot", "salesforce", "intercom"}
        _count(sandbox, CREATE_ROUTES)
        # When the programs run for the snapshot
        report = programs.run_programs(store, writers(config), None, AS_OF, version)
        # then each live record of the moved accounts got one follow-up, for its owner
        assert report.transitions == len(moved) and not report.failed and not report.pending
        assert sorted((c, r) for c, r, _ in report.created) == records
        marker = programs.marker(RULE, AS_OF, version)
        _assert_one_each(config, records, marker)
        assert _journal(store) == {(c, r): ("created", o) for c, r, o in report.created}
        # and the account that stayed at_risk got none
        _assert_none(config, _records(store, [stay]), marker)
        # When the programs run again for the same snapshot
        calls = _calls(sandbox, CREATE_ROUTES)
        again = programs.run_programs(store, writers(config), None, AS_OF, version)
        # then nothing is created: no create call, still one follow-up per record
        assert again.created == [] and again.already == len(records)
        assert _calls(sandbox, CREATE_ROUTES) == calls
        _assert_one_each(config, records, marker)


def test_no_transition_makes_nothing(make_sandbox: Any, tmp_path: Path) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (sandbox, store, config, _):
        version = _version(store)
        some = _pick(store, 1)
        with store.transaction() as tx:  # at_risk in the account's first snapshot
            for key in some:
                tx.execute(
                    store.sql("UPDATE scores SET band = 'at_risk' WHERE account_key = {p}"), (key,)
                )
        _count(sandbox, CREATE_ROUTES)
        # Given only a first snapshot, in which these accounts are at_risk
        # when the programs run, then there is no transition and no create call
        first = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert first.transitions == 0 and first.created == []
        # Given an earlier snapshot with the same bands (unchanged), and one account moving
        # healthy -> neutral (outside the rule's bands)
        _earlier_snapshot(store)
        (other,) = _pick(store, 1, some)[:1]
        with store.transaction() as tx:
            update = store.sql(
                "UPDATE scores SET band = {p} WHERE account_key = {p} AND as_of = {p}"
            )
            tx.execute(update, ("healthy", other, PREVIOUS))
            tx.execute(update, ("neutral", other, AS_OF))
        assert programs.transitions(store, AS_OF, version).keys() == {other}
        # when the programs run, then nothing either
        report = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert report.transitions == 0 and report.created == []
        assert not any(_calls(sandbox, CREATE_ROUTES).values())
        assert store.query("SELECT COUNT(*) FROM wb_programs")[0][0] == 0


def test_a_crash_around_the_create_call_then_reruns_leave_exactly_one(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        version = _version(store)
        # Given accounts of each CRM moving into at_risk, and a process that dies once per
        # record: after journaling "pending", just before the create call for the first group,
        # just after it (the follow-up made, its id not journaled) for the second
        before_accounts = _pick(store, 1)
        after_accounts = _pick(store, 1, before_accounts)
        _earlier_snapshot(store, before_accounts + after_accounts)
        before = _records(store, before_accounts)
        after = _records(store, after_accounts)
        _count(sandbox, CREATE_ROUTES)
        crashing = [
            CrashOnce(
                w,
                {r for c, r in before if c == w.crm},
                {r for c, r in after if c == w.crm},
            )
            for w in writers(config)
        ]
        # When the programs run, die, and run again until a run completes
        crashes, found = 0, 0
        for _ in range(len(before) + len(after) + 1):
            try:
                report = programs.run_programs(store, crashing, None, AS_OF, version)
            except Crash:
                crashes += 1
                states = _journal(store)
                assert "pending" in {s for s, _ in states.values()}
                continue
            found += len(report.found)
            break
        else:
            pytest.fail("the programs never completed")
        # then each record was crashed on once, each follow-up made after the crash was found
        # by its marker instead of made again
        assert crashes == len(before) + len(after)
        marker = programs.marker(RULE, AS_OF, version)
        _assert_one_each(config, before + after, marker)
        # and the create calls are one per record: none repeated
        creates = _calls(sandbox, CREATE_ROUTES)
        for crm in CREATE_ROUTES:
            assert creates[crm] == sum(c == crm for c, _ in before + after), crm
        # and the journal holds every follow-up as created, with the id the CRM shows
        journal = _journal(store)
        assert {k for k, (s, _) in journal.items() if s == "created"} == set(before + after)
        for adapter in writers(config):
            with adapter:
                for crm, rid in after:
                    if crm == adapter.crm:
                        ((object_id, _),), _ = _followups(adapter, rid, marker)
                        assert journal[(crm, rid)][1] == object_id


def test_a_create_whose_answer_is_lost_is_found_not_repeated(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (sandbox, store, config, _):
        version = _version(store)
        moved = _pick(store, 1)
        _earlier_snapshot(store, moved)
        records = _records(store, moved)
        # Given HubSpot's and Salesforce's first task create is made, but its answer cut short
        for crm in ("hubspot", "salesforce"):
            method, path = CREATE_ROUTES[crm]
            sandbox.ctx.faults.add(
                Fault("truncate", vendor=crm, method=method, path=path, calls=[1])
            )
        # when the programs run
        first = programs.run_programs(store, writers(config), None, AS_OF, version)
        # then those creates are left pending (not retried blindly), the CRM's rest waits
        assert {crm for crm, _ in first.pending} == {"hubspot", "salesforce"}
        assert {s for (c, _), (s, _) in _journal(store).items() if c != "intercom"} <= {"pending"}
        # and when they run again, the pending ones are found by marker, the rest made
        sandbox.ctx.faults.clear()
        second = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert {crm for crm, _, _ in second.found} == {"hubspot", "salesforce"}
        assert not second.pending and not second.failed
        _assert_one_each(config, records, programs.marker(RULE, AS_OF, version))
        assert {s for s, _ in _journal(store).values()} == {"created"}


def test_a_run_that_read_the_journal_before_another_claimed_creates_nothing_twice(
    make_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (sandbox, store, config, _):
        version = _version(store)
        moved = _pick(store, 1)
        _earlier_snapshot(store, moved)
        records = _records(store, moved)
        # Given two runs of the programs that both read the journal before either claimed (a
        # race the store's lock prevents; the journal must not rely on it)
        programs.ensure_table(store)
        journal = programs._Journal(store, AS_OF, version)
        stale = journal.rows()
        first = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert len(first.created) == len(records)
        _count(sandbox, CREATE_ROUTES)
        # when the second goes on from what it read
        monkeypatch.setattr(programs._Journal, "rows", lambda self: stale)
        second = programs.run_programs(store, writers(config), None, AS_OF, version)
        # then its claims fail, it makes no create call, and each record has one follow-up
        assert second.created == [] and second.already == len(records)
        assert not any(_calls(sandbox, CREATE_ROUTES).values())
        _assert_one_each(config, records, programs.marker(RULE, AS_OF, version))
        # and a claim of a pending row taken since it was read fails the same way
        monkeypatch.undo()
        key, (state, _, stamp) = next(iter(journal.rows().items()))
        journal.mark(*key, "pending")
        assert not journal.claim_again(key, state, stamp)


def test_rollback_deletes_the_followups_and_is_idempotent(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        version = _version(store)
        moved = _pick(store, 2)
        _earlier_snapshot(store, moved)
        records = _records(store, moved)
        marker = programs.marker(RULE, AS_OF, version)
        # Given the programs ran, but died just after the last Salesforce create (left pending;
        # the Salesforce adapter runs last, so every other follow-up is made)
        sf_record = max(r for c, r in records if c == "salesforce")
        crashing = sorted(
            (
                CrashOnce(w, set(), {sf_record} if w.crm == "salesforce" else set())
                for w in writers(config)
            ),
            key=lambda w: w.crm == "salesforce",
        )
        with pytest.raises(Crash):
            programs.run_programs(store, crashing, None, AS_OF, version)
        assert _journal(store)[("salesforce", sf_record)][0] == "pending"
        _assert_one_each(config, [("salesforce", sf_record)], marker)
        # When the snapshot's follow-ups are rolled back
        undo = programs.rollback_programs(store, writers(config), AS_OF)
        # then every one made is deleted, the pending one found by its marker first
        assert not undo.failed
        assert sorted((c, r) for c, r, _ in undo.deleted) == sorted(
            (c, r) for (c, r), (s, _) in _journal(store).items() if s == "deleted"
        )
        assert ("salesforce", sf_record) in {(c, r) for c, r, _ in undo.deleted}
        _assert_none(config, records, marker)
        # and a second rollback finds nothing open: no delete call
        _count(sandbox, DELETE_ROUTES)
        _count(sandbox, CREATE_ROUTES)
        again = programs.rollback_programs(store, writers(config))
        assert (again.as_of, again.deleted, again.gone, again.cancelled) == (AS_OF, [], 0, 0)
        # and a rerun of the programs does not make them again
        rerun = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert rerun.created == [] and rerun.already == len(_journal(store))
        assert not any(_calls(sandbox, DELETE_ROUTES).values())
        assert not any(_calls(sandbox, CREATE_ROUTES).values())
        _assert_none(config, records, marker)


def test_rollback_leaves_a_followup_a_person_completed_or_edited_and_reports_it(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        version = _version(store)
        moved = _pick(store, 2)
        _earlier_snapshot(store, moved)
        records = _records(store, moved)
        # Given the follow-ups of a snapshot made
        made = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert len(made.created) == len(records)
        tasks = {(c, r): o for (c, r), (s, o) in _journal(store).items() if s == "created"}
        hubspot = sorted(r for c, r in tasks if c == "hubspot")
        salesforce = sorted(r for c, r in tasks if c == "salesforce")
        # and an hour later a person completes one HubSpot task and writes a note in another,
        # and completes a Salesforce task
        sandbox.ctx.clock.advance(3600)
        by_crm = {w.crm: w for w in writers(config)}
        with by_crm["hubspot"] as hs, by_crm["salesforce"] as sf:
            for rid, props in (
                (hubspot[0], {"hs_task_status": "COMPLETED"}),
                (hubspot[1], {"hs_task_body": "Called them, all fine."}),
            ):
                hs.client.api.request("PATCH", f"/crm/v3/objects/tasks/{tasks[('hubspot', rid)]}",
                                      json={"properties": props})  # fmt: skip
            sf.client.api.request("PATCH", f"/sobjects/Task/{tasks[('salesforce', salesforce[0])]}",
                                  json={"Status": "Completed"})  # fmt: skip
        # when the snapshot's follow-ups are rolled back
        undo = programs.rollback_programs(store, writers(config), AS_OF)
        # then those three are left, each reported with why, and every other one is deleted
        assert sorted(undo.kept) == sorted([
            ("hubspot", hubspot[0], "completed"), ("hubspot", hubspot[1], "edited"),
            ("salesforce", salesforce[0], "completed"),
        ])  # fmt: skip
        kept = {(c, r) for c, r, _ in undo.kept}
        assert sorted((c, r) for c, r, _ in undo.deleted) == sorted(set(tasks) - kept)
        marker = programs.marker(RULE, AS_OF, version)
        for adapter in writers(config):
            with adapter:
                for crm, rid in tasks:
                    if crm == adapter.crm:
                        found = _followups(adapter, rid, marker)[0]
                        assert len(found) == ((crm, rid) in kept), (crm, rid)
        # and the journal says so; a second rollback and a rerun of the programs leave them be
        assert {k for k, (s, _) in _journal(store).items() if s == "kept"} == kept
        again = programs.rollback_programs(store, writers(config), AS_OF)
        assert again.kept == [] and again.deleted == []
        rerun = programs.run_programs(store, writers(config), None, AS_OF, version)
        assert rerun.created == []
