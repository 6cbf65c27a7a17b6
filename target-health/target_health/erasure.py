"""Forgetting a person: what the store holds of a contact, erased (GDPR Art. 17, CCPA deletion).

What the store keeps of a person (docs/PRIVACY.md): the contact's canonical row (its source key,
keyed e-mail token ``tok:v1:...``, job title, dates, account link), the links to it from that
person's tickets, conversations and NPS responses (``contact_ref``), HubSpot's association of
the contact with its account (``parents``), and, for a record that failed validation, its
stream and key in ``quarantine``. Scores, metrics and the write-back journal hold account-level
figures only.

A subject is found by e-mail (its keyed token under every HMAC key configured, so the address
itself is never stored or compared), by the token, or by a contact's id in one CRM; then every
contact with the same token is the same person in another CRM and is erased too. Erasing:

- the contact rows are deleted, with their ``parents`` rows and quarantine entries;
- the person's tickets, conversations and NPS responses stay as account evidence (a score, a
  date, a status) but lose the link to the person: ``contact_ref`` is cleared and, where the
  contact was the only way to their account, the account is written in ``account_ref``;
- one ``erasures`` row records when, by which kind of selector and how many rows, never the
  identifier;
- each erased contact gets an ``erased`` entry (a hash of its key, its account): the store then
  drops the contact when it is written again (a replayed Singer file, another run that read the
  CRM before the erasure, the next sync of a CRM that still holds the person) and clears the
  link to it from the records written later, as above (store.Store.write).

Contacts deleted in the CRM are purged the same way once ``deleted_contact_retention_days``
have passed since their deletion (:func:`purge_deleted_contacts`, at the end of each target run);
their entry covers the versions up to the deletion, so a contact restored in its CRM afterwards
(a later version) is stored again.

An erasure takes the store's erasure hold alone (Store.hold_erasures), so a write running at
the same time sees it whole or not at all. The CRM still holds a person forgotten only here:
erase them there too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .store import Erased, Store, erased_digest, to_json

_DDL = """CREATE TABLE IF NOT EXISTS erasures (
    erased_at TEXT NOT NULL,
    selector TEXT NOT NULL,
    counts TEXT NOT NULL
)"""


@dataclass
class Erasure:
    """What one erasure removed (counts only)."""

    selector: str  # email | token | contact-id | deleted-in-crm
    contacts: int = 0
    unlinked: int = 0  # tickets, conversations, NPS responses no longer linked to the person
    parents: int = 0
    quarantine: int = 0
    crms: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "unlinked": self.unlinked,
            "parents": self.parents,
            "quarantine": self.quarantine,
            "crms": sorted(self.crms),
        }


def ensure_table(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute(_DDL)


def subject_keys(
    store: Store,
    *,
    tokens: Iterable[str] = (),
    contact_id: tuple[str, str] | None = None,
) -> tuple[set[str], set[str]]:
    """The contact keys of a person, and the streams to clear of their quarantine entries:
    contacts holding one of ``tokens``, or the contact ``(crm, id)``; then every contact
    sharing a token with those."""
    wanted = {t for t in tokens if t}
    keys: set[str] = set()
    streams: set[str] = set()
    if contact_id is not None:
        crm, rid = contact_id
        known = store.query(
            "SELECT key, token FROM records WHERE entity = 'contact' AND crm = {p}", (crm,)
        )
        for key, token in known:
            kind = str(key).split(":")
            if len(kind) >= 3 and ":".join(kind[2:]) == rid:
                keys.add(str(key))
                if token:
                    wanted.add(str(token))
        # a contact that never reached the records (quarantined) is known by its id there
        streams |= {f"{crm}_{str(k).split(':')[1]}" for k, _ in known if ":" in str(k)}
    for token in sorted(wanted):
        keys |= {
            str(k)
            for (k,) in store.query(
                "SELECT key FROM records WHERE entity = 'contact' AND token = {p}", (token,)
            )
        }
    return keys, streams


def erase(
    store: Store,
    keys: Iterable[str],
    selector: str,
    *,
    quarantine: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    later_versions: bool = False,
) -> Erasure:
    """Erase the contacts ``keys`` (see the module doc) in one transaction, and log it.
    ``quarantine``: more (stream, record key) entries to delete (a contact known only there).
    ``later_versions``: a version of a contact modified after the one erased is stored again
    (a purged deletion); otherwise the contact is never stored again."""
    ensure_table(store)
    keys = sorted(set(keys))
    sql = store.sql
    done: list[Erasure] = []

    when = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")

    def work(tx: Any) -> None:  # run again whole if PostgreSQL breaks it off (Store.atomic)
        store.hold_erasures(tx, exclusive=True)
        report = Erasure(selector)
        entries = dict(quarantine or {})
        for key in keys:
            parts = key.split(":")
            if len(parts) >= 3:
                entries.setdefault(f"{parts[0]}_{parts[1]}", ":".join(parts[2:]))
                report.crms.add(parts[0])
            tx.execute(
                sql(
                    "SELECT account_ref, modified_ms FROM records"
                    " WHERE entity = 'contact' AND key = {p}"
                ),
                (key,),
            )
            found = tx.fetchone()
            tx.execute(sql("SELECT account_ref FROM parents WHERE child = {p}"), (key,))
            parent = tx.fetchone()
            account = (found[0] if found else None) or (parent[0] if parent else None)
            if found or not later_versions:
                through = found[1] if found and later_versions else None
                _suppress(tx, sql, key, Erased(account, through), when)
            report.unlinked += _unlink(tx, sql, key, account)
            tx.execute(sql("DELETE FROM records WHERE entity = 'contact' AND key = {p}"), (key,))
            report.contacts += max(tx.rowcount, 0)
            tx.execute(sql("DELETE FROM parents WHERE child = {p}"), (key,))
            report.parents += max(tx.rowcount, 0)
        for stream, record_key in sorted(entries.items()):
            tx.execute(
                sql("DELETE FROM quarantine WHERE stream = {p} AND record_key = {p}"),
                (stream, record_key),
            )
            report.quarantine += max(tx.rowcount, 0)
        tx.execute(
            sql("INSERT INTO erasures (erased_at, selector, counts) VALUES ({p}, {p}, {p})"),
            (when, selector, json.dumps(report.counts(), sort_keys=True)),
        )
        done[:] = [report]

    store.atomic(work)
    return done[0]


def _suppress(tx: Any, sql: Any, key: str, entry: Erased, when: str) -> None:
    """Record ``key`` as erased; an entry already there for every version stays so."""
    digest = erased_digest(key)
    tx.execute(sql("SELECT through_ms FROM erased WHERE digest = {p}"), (digest,))
    before = tx.fetchone()
    through = entry.through_ms
    if before is not None:
        through = None if before[0] is None or through is None else max(through, before[0])
    tx.execute(
        sql(
            "INSERT INTO erased (digest, account_ref, through_ms, erased_at)"
            " VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (digest) DO UPDATE SET"
            " account_ref = COALESCE(excluded.account_ref, erased.account_ref),"
            " through_ms = excluded.through_ms, erased_at = excluded.erased_at"
        ),
        (digest, entry.account_ref, through, when),
    )


def _unlink(tx: Any, sql: Any, key: str, account: str | None) -> int:
    """Clear ``contact_ref`` = ``key`` from the person's other records, keeping their account."""
    tx.execute(
        sql(
            "SELECT r.entity, r.key, r.account_ref, r.data, p.child FROM records r"
            " LEFT JOIN parents p ON p.child = r.key WHERE r.contact_ref = {p}"
        ),
        (key,),
    )
    rows = tx.fetchall()
    for entity, rkey, account_ref, data, has_parent in rows:
        doc = json.loads(data)
        doc["contact_ref"] = None
        if account_ref is None and has_parent is None and account is not None:
            account_ref = doc["account_ref"] = account
        tx.execute(
            sql(
                "UPDATE records SET contact_ref = NULL, account_ref = {p}, data = {p}"
                " WHERE entity = {p} AND key = {p}"
            ),
            (account_ref, to_json(doc), entity, rkey),
        )
    return len(rows)


def purge_deleted_contacts(store: Store, retention_days: float, now: dt.datetime) -> Erasure:
    """Erase the contacts deleted in their CRM more than ``retention_days`` before ``now``
    (their last modification is the deletion)."""
    cutoff = now - dt.timedelta(days=retention_days)
    cutoff_ms = int(cutoff.timestamp() * 1000)
    keys = [
        str(k)
        for (k,) in store.query(
            "SELECT key FROM records WHERE entity = 'contact' AND deleted = 1"
            " AND modified_ms IS NOT NULL AND modified_ms <= {p}",
            (cutoff_ms,),
        )
    ]
    if not keys:
        return Erasure("deleted-in-crm")
    return erase(store, keys, "deleted-in-crm", now=now, later_versions=True)
