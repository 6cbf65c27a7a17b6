"""Forgetting a person (target_health.erasure, ``target-health forget``).

Given the three CRMs of the sandbox synced by tap-crm (PII encrypted, e-mails tokenised) into
target-health's store, then:

- ``forget --email`` erases every contact of that person in every CRM, their associations and
  quarantine entries, unlinks their tickets, conversations and NPS responses (kept for their
  account), logs the erasure without the identifier, and leaves no trace of the address, its
  token or the contact keys anywhere in the store; a second time it finds nothing;
- ``forget --contact-id`` also finds a contact that only ever reached the quarantine;
- a contact deleted in the CRM is purged after ``deleted_contact_retention_days``;
- an erased contact written again (a replay, a run that read the CRM before the erasure) is
  dropped, and the records linking to it are unlinked as the erasure unlinked them; a purged
  deletion's replay stays erased, a contact restored in its CRM later comes back;
- a write waits for an erasure in progress (SQLite and PostgreSQL);
- wrong selectors are one line and exit 2.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tapkit import PII_HMAC_KEYS, PII_KEYS, run_tap, tap_config

from crm_connectors.canonical import Parent, Row
from crm_connectors.pii import KeyRing
from target_health.erasure import erase, purge_deleted_contacts
from target_health.store import Invalid, Store, open_store

TARGET = [sys.executable, "-m", "target_health.target"]


def _target(workdir: Path, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    config = {"database_url": f"sqlite:///{workdir / 'health.sqlite'}", "pii_keys": PII_KEYS,
              "pii_hmac_keys": PII_HMAC_KEYS} | extra  # fmt: skip
    (workdir / "target.json").write_text(json.dumps(config))
    lines = "".join(json.dumps(m) + "\n" for m in messages)
    done = subprocess.run([*TARGET, "--config", str(workdir / "target.json")], input=lines,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return config


@contextmanager
def synced(make_sandbox: Any, tmp_path: Path) -> Iterator[tuple[Any, Store, dict[str, Any], Any]]:
    sandbox = make_sandbox(size=40, seed_value=11)
    config = tap_config(sandbox, hubspot_search_requests_per_second=1000)
    run = run_tap(tmp_path / "tap", config)
    assert run.returncode == 0, run.stderr[-3000:]
    _target(tmp_path, run.messages)
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    try:
        yield sandbox, store, config, run
    finally:
        store.close()


def _forget(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*TARGET, "forget", *args, "--config", str(tmp_path / "target.json"), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _dump(store: Store) -> str:
    """Every table of the store as text."""
    tables = [t for (t,) in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(repr(store.query(f"SELECT * FROM {t}")) for t in tables)


def _person(run: Any, store: Store) -> tuple[str, str, set[str]]:
    """The e-mail address, token and contact keys of the person with the most contacts across
    CRMs (the sandbox's people appear in several)."""
    tokens = Counter(
        t for (t,) in store.query("SELECT token FROM records WHERE entity = 'contact'") if t
    )
    token = tokens.most_common(1)[0][0]
    keys = {k for (k,) in store.query("SELECT key FROM records WHERE token = {p}", (token,))}
    keyring = KeyRing.from_settings({"pii_keys": PII_KEYS, "pii_hmac_keys": PII_HMAC_KEYS})
    for stream, records in run.records.items():
        for rec in records:
            if rec.get("email__token") == token and isinstance(rec.get("email"), str):
                email = keyring.decrypt(rec["email"], stream=stream, path="email")
                return str(email), token, keys
    raise AssertionError("no contact with that token carries its e-mail")


def test_forget_by_email_erases_the_person_everywhere_in_the_store(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with synced(make_sandbox, tmp_path) as (_, store, _, run):
        # Given a person with contacts in the store, and what links to them
        email, token, keys = _person(run, store)
        assert keys
        # (each with the account it reaches: its own, its association's, else its contact's)
        in_keys = "(" + ", ".join("{p}" for _ in keys) + ")"
        linked = store.query(
            "SELECT r.entity, r.key, COALESCE(r.account_ref, p.account_ref, c.account_ref,"
            " cp.account_ref), p.account_ref FROM records r"
            " LEFT JOIN parents p ON p.child = r.key"
            " LEFT JOIN records c ON c.entity = 'contact' AND c.key = r.contact_ref"
            " LEFT JOIN parents cp ON cp.child = r.contact_ref"
            " WHERE r.contact_ref IN " + in_keys,
            tuple(sorted(keys)),
        )
        (key0,) = sorted(keys)[:1]
        stream0 = "_".join(key0.split(":")[:2])
        store.quarantine([Invalid(stream0, key0.split(":", 2)[2], "/title", "type")], "run-x")
        total = store.query("SELECT COUNT(*) FROM records")[0][0]
        # when it is forgotten by e-mail address
        done = _forget(tmp_path, "--email", email.upper())
        # then the command succeeds and says what it erased, never who
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout)
        assert out["contacts"] == len(keys) and out["unlinked"] == len(linked)
        assert out["quarantine"] == 1 and out["forgotten"] == "email"
        # and nothing of the person is left: no contact row, no link, no association, no
        # quarantine entry, and neither address, token nor contact key anywhere in the store
        dump = _dump(store)
        for trace in (email, email.lower(), token, *keys):
            assert trace not in dump, "a trace of the subject is left"
            assert trace not in done.stdout + done.stderr
        # and their tickets, conversations and NPS responses stay, with their account
        assert store.query("SELECT COUNT(*) FROM records")[0][0] == total - len(keys)
        for entity, key, account, parent in linked:
            (after,) = store.query(
                "SELECT account_ref, contact_ref, data FROM records WHERE entity = {p}"
                " AND key = {p}",
                (entity, key),
            )
            assert after[1] is None and json.loads(after[2])["contact_ref"] is None
            assert (parent or after[0]) == account, (entity, key)
        # and the erasure is logged, by kind and counts only
        (log,) = store.query("SELECT counts FROM erasures WHERE selector = 'email'")
        assert json.loads(log[0])["contacts"] == len(keys)
        # and forgetting again finds nothing
        again = json.loads(_forget(tmp_path, "--email", email).stdout)
        assert again["contacts"] == 0 and again["unlinked"] == 0
        # and when the same sync is loaded again (the CRM still holds the person), the store
        # does not take them back: no contact, no link to them, nothing new
        _target(tmp_path, run.messages)
        assert store.query("SELECT COUNT(*) FROM records")[0][0] == total - len(keys)
        assert not store.query(
            "SELECT key FROM records WHERE contact_ref IN " + in_keys, tuple(sorted(keys))
        )
        dump = _dump(store)
        assert not [trace for trace in (email, token, *keys) if trace in dump]


def test_forget_by_contact_id_finds_a_contact_known_only_to_the_quarantine(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with synced(make_sandbox, tmp_path) as (_, store, _, _):
        # Given a HubSpot contact that never reached the records: only its quarantine entry
        store.quarantine([Invalid("hubspot_contacts", "999000111", "/email", "format")], "run-x")
        # when it is forgotten by its id
        done = _forget(tmp_path, "--contact-id", "hubspot:999000111")
        # then its quarantine entry is gone, and nothing else
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout)
        assert out["quarantine"] == 1 and out["contacts"] == 0
        assert "999000111" not in _dump(store)


def test_wrong_selectors_are_one_line_and_exit_2(make_sandbox: Any, tmp_path: Path) -> None:
    with synced(make_sandbox, tmp_path):
        config = json.loads((tmp_path / "target.json").read_text())
        # Given a config without HMAC keys, when forgetting by e-mail
        (tmp_path / "target.json").write_text(json.dumps(config | {"pii_hmac_keys": ""}))
        no_keys = _forget(tmp_path, "--email", "someone@example.com")
        # then it cannot match the tokens, and says which setting it needs
        assert no_keys.returncode == 2 and "pii_hmac_keys" in no_keys.stderr
        assert "someone@example.com" not in no_keys.stderr
        assert no_keys.stderr.count("\n") == 1 and "Traceback" not in no_keys.stderr
        # and an unknown CRM in --contact-id is one line naming the form
        bad = _forget(tmp_path, "--contact-id", "nocrm:12")
        assert bad.returncode == 2 and "expected CRM:ID" in bad.stderr
        assert bad.stderr.count("\n") == 1


def test_a_contact_deleted_in_the_crm_is_purged_after_the_retention(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with synced(make_sandbox, tmp_path) as (sandbox, store, config, run):
        # Given a HubSpot contact archived in the CRM, and a sync that sees it
        victim = next(r["id"] for r in run.records["hubspot_contacts"] if not r["_sdc_deleted_at"])
        url = f"{sandbox.urls['hubspot']}/crm/v3/objects/contacts/{victim}"
        headers = {"Authorization": f"Bearer {config['hubspot_access_token']}"}
        httpx.delete(url, headers=headers).raise_for_status()
        rerun = run_tap(tmp_path / "tap2", config, state=run.last_state)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        key = f"hubspot:contacts:{victim}"
        # when the target runs with the default retention (30 days)
        _target(tmp_path, rerun.messages)
        # then the contact is kept, marked deleted
        assert store.query("SELECT deleted FROM records WHERE key = {p}", (key,)) == [(1,)]
        # and when a run's retention is 0 days, it is erased by that run, and counted
        _target(tmp_path, rerun.messages, deleted_contact_retention_days=0)
        assert store.query("SELECT COUNT(*) FROM records WHERE key = {p}", (key,)) == [(0,)]
        (counts,) = store.query("SELECT counts FROM runs ORDER BY finished_at DESC LIMIT 1")[0]
        assert json.loads(counts)["purged_contacts"] == 1
        logged = store.query("SELECT counts FROM erasures WHERE selector = 'deleted-in-crm'")
        assert json.loads(logged[-1][0])["contacts"] == 1


def test_purge_counts_the_retention_from_the_deletion(tmp_path: Path) -> None:
    # Given two contacts deleted 31 and 29 days ago and a live one last seen 90 days ago
    store = open_store(f"sqlite:///{tmp_path / 'h.sqlite'}")
    now = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)

    def contact(rid: str, days: int, deleted: bool) -> Row:
        when = (now - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")
        return Row("contact", {"key": f"hubspot:contacts:{rid}", "crm": "hubspot",
                               "deleted": deleted, "modified": when, "account_ref": None,
                               "email_token": f"tok:v1:h1:{rid}", "title": "CTO"})  # fmt: skip

    store.write([contact("1", 31, True), contact("2", 29, True), contact("3", 90, False)])
    # when deleted contacts are purged with a 30-day retention
    purged = purge_deleted_contacts(store, 30, now)
    # then only the one deleted more than 30 days ago is gone
    assert purged.contacts == 1
    left = {k for (k,) in store.query("SELECT key FROM records")}
    assert left == {"hubspot:contacts:2", "hubspot:contacts:3"}


ACCOUNT, CONTACT = "hubspot:companies:1", "hubspot:contacts:9"


def _contact(modified: str, deleted: bool = False) -> Row:
    return Row("contact", {"key": CONTACT, "crm": "hubspot", "deleted": deleted,
                           "modified": modified, "account_ref": None,
                           "email_token": "tok:v1:h1:abc", "title": "CTO"})  # fmt: skip


def _linked(entity: str, key: str, modified: str) -> Row:
    return Row(entity, {"key": key, "crm": "hubspot", "deleted": False, "modified": modified,
                        "account_ref": None, "contact_ref": CONTACT})  # fmt: skip


def _state(store: Store) -> dict[str, Any]:
    return {
        "contact": store.query("SELECT deleted FROM records WHERE key = {p}", (CONTACT,)),
        "parent": store.query("SELECT account_ref FROM parents WHERE child = {p}", (CONTACT,)),
        "linked": {
            str(key): (ref, cref, json.loads(data)["contact_ref"])
            for key, ref, cref, data in store.query(
                "SELECT key, account_ref, contact_ref, data FROM records"
                " WHERE entity IN ('ticket', 'nps') ORDER BY key"
            )
        },
        "quarantine": store.query("SELECT record_key FROM quarantine"),
    }


def test_an_erased_contact_written_again_is_dropped_and_its_records_unlinked(
    store_url: str,
) -> None:
    store = open_store(store_url)
    # Given a contact of an account (by its association), with a ticket and an NPS response
    # that reach the account only through the contact, erased
    person = [_contact("2026-11-01T00:00:00Z"), Parent(CONTACT, ACCOUNT)]
    evidence = [_linked("ticket", "hubspot:tickets:5", "2026-11-02T00:00:00Z"),
                _linked("nps", "hubspot:nps:6", "2026-11-02T00:00:00Z")]  # fmt: skip
    account = Row("account", {"key": ACCOUNT, "crm": "hubspot", "deleted": False,
                              "modified": "2026-11-01T00:00:00Z"})  # fmt: skip
    store.write([account, *person, *evidence])
    done = erase(store, [CONTACT], "email")
    assert done.contacts == 1 and done.unlinked == 2
    erased = _state(store)
    nps = "SELECT data FROM records WHERE key = 'hubspot:nps:6'"
    nps_erased = store.query(nps)
    # when another run that read the CRM before the erasure writes it all again, the ticket
    # changed since, and the contact's record fails validation there
    later = _linked("ticket", "hubspot:tickets:5", "2026-11-20T00:00:00Z")
    written = store.write([*person, later, evidence[1]])
    store.quarantine([Invalid("hubspot_contacts", "9", "/title", "type")], "run-2")
    # then the contact, its association and its quarantine entry are not stored again
    after = _state(store)
    assert after["contact"] == [] and after["parent"] == [] and after["quarantine"] == []
    assert written == 2
    # and the ticket and response keep no link to the person, and reach the account as the
    # erasure left them
    assert (
        after["linked"]
        == erased["linked"]
        == {
            "hubspot:nps:6": (ACCOUNT, None, None),
            "hubspot:tickets:5": (ACCOUNT, None, None),
        }
    )
    # (the response written again is the very row the erasure left, to the byte: a run that
    # erased and one that dropped end with the same store)
    assert store.query(nps) == nps_erased
    # and the store names the contact by no key: only by a hash
    dump = repr(store.query("SELECT * FROM erased"))
    assert CONTACT not in dump and "tok:v1" not in dump
    store.close()


def test_a_purged_deletion_stays_erased_and_a_contact_restored_later_comes_back(
    store_url: str,
) -> None:
    store = open_store(store_url)
    now = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)
    # Given a contact deleted in its CRM 40 days ago, purged
    store.write([_contact("2026-10-24T00:00:00Z", deleted=True)])
    assert purge_deleted_contacts(store, 30, now).contacts == 1
    # when the deletion is read again (the archived pass re-lists deleted contacts)
    assert store.write([_contact("2026-10-24T00:00:00Z", deleted=True)]) == 0
    # then it stays erased
    assert _state(store)["contact"] == []
    # and when the contact is restored in the CRM (a later version), with its association
    assert store.write([_contact("2026-11-30T00:00:00Z")]) == 1
    store.write([Parent(CONTACT, ACCOUNT)])
    # then it is stored again, associated, and no longer on the erased list
    assert _state(store)["contact"] == [(0,)]
    assert _state(store)["parent"] == [(ACCOUNT,)]
    assert store.query("SELECT COUNT(*) FROM erased") == [(0,)]
    store.close()


def test_a_write_waits_for_an_erasure_in_progress(store_url: str) -> None:
    eraser, writer = open_store(store_url), open_store(store_url)
    held, release, wrote = threading.Event(), threading.Event(), threading.Event()

    def erasing() -> None:
        with eraser.transaction() as tx:
            eraser.hold_erasures(tx, exclusive=True)
            held.set()
            release.wait(30)

    def writing() -> None:
        writer.write([_contact("2026-11-01T00:00:00Z")])
        wrote.set()

    # Given an erasure in progress (holding the erasure hold alone)
    threads = [threading.Thread(target=erasing)]
    threads[0].start()
    assert held.wait(30)
    # when a run writes meanwhile
    threads.append(threading.Thread(target=writing))
    threads[1].start()
    # then the write waits for the erasure to finish, and then goes through
    assert not wrote.wait(1.0), "a write went through while an erasure held the store"
    release.set()
    for thread in threads:
        thread.join(60)
    assert wrote.is_set() and _state(writer)["contact"] == [(0,)]
    eraser.close()
    writer.close()


def test_privacy_doc_lists_every_personal_field_and_the_store_holds_none_in_clear(
    make_sandbox: Any, tmp_path: Path
) -> None:
    import importlib
    import re

    from crm_connectors import registry

    # Given docs/PRIVACY.md's table of personal fields, and each connector's PII_FIELDS
    doc = (Path(__file__).parents[1] / "docs" / "PRIVACY.md").read_text()
    rows = {
        (m[1], m[2]): set(re.findall(r"`([^`]+)`", m[3]))
        for m in re.finditer(r"^\| (\w+) \| (\w+) \| (.+) \|$", doc, re.M)
    }
    for crm in registry.names():
        fields = importlib.import_module(f"crm_connectors.{crm}.resources").PII_FIELDS
        # then every marked field of every object is in the table
        for obj, marked in fields.items():
            assert set(marked) <= rows.get((crm, obj), set()), (crm, obj)
    # and, as it says, the store of a synced run holds no ciphertext and no e-mail address
    with synced(make_sandbox, tmp_path) as (_, store, _, _):
        dump = _dump(store)
        assert "enc:v1:" not in dump
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", dump)
