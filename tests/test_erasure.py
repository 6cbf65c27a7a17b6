"""Forgetting a person (target_health.erasure, ``target-health forget``).

Given the three CRMs of the sandbox synced by tap-crm (PII encrypted, e-mails tokenised) into
target-health's store, then:

- ``forget --email`` erases every contact of that person in every CRM, their associations and
  quarantine entries, unlinks their tickets, conversations and NPS responses (kept for their
  account), logs the erasure without the identifier, and leaves no trace of the address, its
  token or the contact keys anywhere in the store; a second time it finds nothing;
- ``forget --contact-id`` also finds a contact that only ever reached the quarantine;
- a contact deleted in the CRM is purged after ``deleted_contact_retention_days``;
- wrong selectors are one line and exit 2.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tapkit import PII_HMAC_KEYS, PII_KEYS, run_tap, tap_config

from crm_connectors.canonical import Row
from crm_connectors.pii import KeyRing
from target_health.erasure import purge_deleted_contacts
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
