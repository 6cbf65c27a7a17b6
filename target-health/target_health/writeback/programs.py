"""Retention programs: on a configured band transition, one follow-up for the account owner in
each CRM that holds the account (a task, or a company tag where the CRM has no tasks: the CRM's
``writer.py`` in its connector folder), once per transition, and reversible.

**Rules** (setting ``writeback.programs``, a list; ``DEFAULT_RULES`` when not set, none when
``[]``)::

    {"name": "at-risk",                     # optional; default "into:at_risk,critical"
     "into": ["at_risk", "critical"],       # the bands that start the program
     "subject": "...", "body": "...",       # the task's title and text
     "tag": "...",                          # optional: the Intercom tag's name
     "due_days": 3}                         # optional: the task is due this many days on

``subject``, ``body`` and ``tag`` are templates: ``{name}`` (the account's name in the store),
``{band}``, ``{previous_band}``, ``{score}``, ``{as_of}``, ``{account_key}``.

**Transition.** An account transitions under a rule in snapshot (as_of, model version) when its
band there is in ``into`` and its band in its previous snapshot of the *same* model version (the
latest earlier as_of) is not. An account's first snapshot is no transition, nor is a new model
version's first snapshot (bands of two models are not comparable).

**Once per transition.** Each follow-up is a row of ``wb_programs``, keyed by (account_key,
as_of, model_version, rule, crm, record_id): the transition and the CRM record it is for. The
row is written ``pending`` (committed) before the create call, and ``created`` with the object
id after it. A rerun of the same snapshot finds the row and makes no call. The states:

- ``pending``: the create may or may not have happened (a crash between the two journal
  writes, a 5xx, or a connection that dropped after the request went out). It is resolved on the
  next run (and by rollback) by looking the follow-up up on that record by its **marker**, a
  token in its subject (``hc-`` and 10 hex digits of a hash of rule, as_of and model version,
  so unique per transition and record): found, the row becomes ``created`` with that id and no
  call is made; not found, it is created then. The HTTP layer never repeats a sent create, so
  the lookup is the only retry path.
- ``created``: done; never created again, whatever happens to the object in the CRM.
- ``failed``: the CRM certainly did not act (a 4xx refusal, a throttle, a connection that never
  opened): tried again by the next run of the same snapshot.
- ``deleted`` / ``cancelled``: rolled back (``rollback_programs``); terminal: a rerun of that
  snapshot does not make them again.
- ``kept``: a rollback found it completed or edited by a person (connectors with
  ``followup_kept``: HubSpot and Salesforce tasks) and left it in the CRM; terminal too.

Runs of one store do not overlap (the store's write-back lock, runlock): a ``pending`` row is
taken as left by a crash. The journal does not rely on that: a claim is a compare-and-set (a new
row inserted only if none exists, an old one made pending only if unchanged since it was read),
and a run whose claim fails leaves that follow-up to the run that won it. After a CRM-wide
failure (throttled past the retries, a 5xx, an auth or quota error) the rest of that CRM's
follow-ups wait for the next run, untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_connectors.base import Followups
from crm_connectors.errors import (
    AuthError,
    CrmError,
    MissingScopes,
    NetworkError,
    QuotaExhausted,
    RateLimited,
    RetriableError,
)

from ..store import Store

log = logging.getLogger(__name__)

_DDL = """CREATE TABLE IF NOT EXISTS wb_programs (
    account_key TEXT NOT NULL,
    as_of TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rule TEXT NOT NULL,
    crm TEXT NOT NULL,
    record_id TEXT NOT NULL,
    previous_band TEXT,
    band TEXT NOT NULL,
    marker TEXT NOT NULL,
    state TEXT NOT NULL,
    object_id TEXT,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_key, as_of, model_version, rule, crm, record_id)
)"""

#: The documented default: one follow-up when an account falls into at-risk or critical.
DEFAULT_RULES: tuple[Mapping[str, Any], ...] = (
    {
        "into": ["at_risk", "critical"],
        "subject": "Health check: {name} is now {band}",
        "body": (
            "{name}'s customer health moved from {previous_band} to {band} (score {score})"
            " as of {as_of}. Please review the account and reach out."
        ),
        "tag": "health: {band} {as_of}",
    },
)
DEFAULT_TAG = "health: {band} {as_of}"
_SUBJECT_MAX = 255
_FIELDS = ("name", "band", "previous_band", "score", "as_of", "account_key")
#: Errors after which nothing more is sent to that CRM in this run.
_CRM_WIDE = (AuthError, MissingScopes, QuotaExhausted, RetriableError)


#: The part of a CRM writer that programs use (crm_connectors.base.Followups).
FollowupWriter = Followups


def _check_template(text: str, what: str) -> str:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in _FIELDS:
            raise ValueError(
                f"writeback.programs: {what} uses {{{name}}}; known: {', '.join(_FIELDS)}"
            )
    return text


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    into: frozenset[str]
    subject: str
    body: str
    tag: str = DEFAULT_TAG
    due_days: int = 3

    @classmethod
    def from_setting(cls, given: Mapping[str, Any]) -> Rule:
        unknown = sorted(set(given) - {"name", "into", "subject", "body", "tag", "due_days"})
        if unknown:
            raise ValueError(f"writeback.programs: unknown rule key(s): {', '.join(unknown)}")
        into = given.get("into")
        if isinstance(into, str):
            into = [into]
        if not into or not all(isinstance(b, str) and b for b in into):
            raise ValueError("writeback.programs: each rule needs 'into', a list of bands")
        subject, body = given.get("subject"), given.get("body")
        if not isinstance(subject, str) or not subject or not isinstance(body, str):
            raise ValueError("writeback.programs: each rule needs a 'subject' and a 'body'")
        bands = frozenset(into)
        return cls(
            name=str(given.get("name") or "into:" + ",".join(sorted(bands))),
            into=bands,
            subject=_check_template(subject, "subject"),
            body=_check_template(body, "body"),
            tag=_check_template(str(given.get("tag") or DEFAULT_TAG), "tag"),
            due_days=int(given.get("due_days", 3)),
        )


def rules_from_settings(settings: Sequence[Mapping[str, Any] | Rule] | None) -> list[Rule]:
    """The rules of ``writeback.programs``: the default when None, none when empty."""
    given = DEFAULT_RULES if settings is None else settings
    rules = [r if isinstance(r, Rule) else Rule.from_setting(r) for r in given]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError("writeback.programs: two rules have the same name")
    return rules


def marker(rule: str, as_of: str, model_version: str) -> str:
    """The token in a follow-up's subject that identifies its transition (on its record)."""
    digest = hashlib.sha256(f"{rule}\x1f{as_of}\x1f{model_version}".encode()).hexdigest()
    return f"hc-{digest[:10]}"


def ensure_table(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute(_DDL)


@dataclass(frozen=True, slots=True)
class Transition:
    account_key: str
    previous_band: str | None
    band: str
    score: float | None


def transitions(store: Store, as_of: str, model_version: str) -> dict[str, Transition]:
    """Accounts whose band changed between their previous snapshot (same model) and this one."""
    out: dict[str, Transition] = {}
    for key, band, score, previous in store.stream(
        "SELECT s.account_key, s.band, s.score, p.band FROM scores s JOIN scores p"
        " ON p.account_key = s.account_key AND p.model_version = s.model_version"
        " AND p.as_of = (SELECT MAX(q.as_of) FROM scores q WHERE q.account_key = s.account_key"
        " AND q.model_version = s.model_version AND q.as_of < s.as_of)"
        " WHERE s.as_of = {p} AND s.model_version = {p} AND s.band IS NOT NULL",
        (as_of, model_version),
    ):
        if band != previous:
            out[str(key)] = Transition(
                str(key), previous, str(band), float(score) if score is not None else None
            )
    return out


@dataclass(frozen=True, slots=True)
class _Target:
    account_key: str
    rule: Rule
    crm: str
    record_id: str
    transition: Transition
    name: str


@dataclass
class ProgramReport:
    as_of: str
    model_version: str
    transitions: int = 0  # (account, rule) pairs that started a program
    created: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, object id
    found: list[tuple[str, str, str]] = field(default_factory=list)  # pending, found made
    already: int = 0  # follow-ups journaled done (or rolled back) before this run
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, error
    pending: list[tuple[str, str]] = field(default_factory=list)  # ambiguous: next run looks
    waiting: list[tuple[str, str]] = field(default_factory=list)  # not tried: CRM down / absent

    def counts(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "created": len(self.created),
            "found": len(self.found),
            "already": self.already,
            "failed": len(self.failed),
            "pending": len(self.pending),
            "waiting": len(self.waiting),
        }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _code(err: BaseException) -> str:
    if isinstance(err, CrmError):
        return err.code or type(err).__name__
    return type(err).__name__


def _surely_not_sent(err: CrmError) -> bool:
    """The CRM certainly did not act on the create: a refusal, a throttle, no connection."""
    if isinstance(err, RateLimited):
        return True
    if isinstance(err, NetworkError):
        return not err.sent
    return not isinstance(err, RetriableError)  # 4xx; a 5xx may have acted


def _targets(store: Store, rules: Sequence[Rule], moved: Mapping[str, Transition]) -> list[_Target]:
    out: list[_Target] = []
    if not moved or not rules:
        return out
    for key, crm, account_ref, data in store.stream(
        "SELECT key, crm, account_ref, data FROM records"
        " WHERE entity = 'account' AND deleted = 0 ORDER BY key"
    ):
        transition = moved.get(str(account_ref))
        if transition is None:
            continue
        record_id = str(key).split(":", 2)[2]
        name = str(json.loads(data).get("name") or account_ref)
        for rule in rules:
            if transition.band in rule.into and transition.previous_band not in rule.into:
                out.append(_Target(str(account_ref), rule, str(crm), record_id, transition, name))
    return out


def _texts(t: _Target, as_of: str, mark: str, kind: str) -> tuple[str, str]:
    values = {
        "name": t.name,
        "band": t.transition.band,
        "previous_band": t.transition.previous_band or "",
        "score": "" if t.transition.score is None else f"{t.transition.score:g}",
        "as_of": as_of,
        "account_key": t.account_key,
    }
    if kind == "tag":  # the tag's name: shared by the accounts of one transition
        return f"{t.rule.tag.format_map(values)} [{mark}]", ""
    # The marker must survive the CRM's subject length (Salesforce 255): cut the text, not it.
    text = t.rule.subject.format_map(values)[: _SUBJECT_MAX - len(mark) - 3]
    subject = f"{text} [{mark}]"
    body = f"{t.rule.body.format_map(values)}\n\n(target-health {t.rule.name}, ref {mark})"
    return subject, body


class _Journal:
    def __init__(self, store: Store, as_of: str, model_version: str) -> None:
        self.store = store
        self.as_of = as_of
        self.version = model_version

    def rows(self) -> dict[tuple[str, str, str, str], tuple[str, str | None, str]]:
        """(account_key, rule, crm, record_id) -> (state, object_id, updated_at) of this
        snapshot."""
        return {
            (str(a), str(r), str(c), str(i)): (str(s), o, str(u))
            for a, r, c, i, s, o, u in self.store.query(
                "SELECT account_key, rule, crm, record_id, state, object_id, updated_at"
                " FROM wb_programs WHERE as_of = {p} AND model_version = {p}",
                (self.as_of, self.version),
            )
        }

    def claim(self, t: _Target, mark: str) -> bool:
        """A new row, ``pending`` and committed before the create call; False when a row for
        it exists already (another run claimed it since this one read the journal)."""
        with self.store.transaction() as tx:
            tx.execute(
                self.store.sql(
                    "INSERT INTO wb_programs (account_key, as_of, model_version, rule, crm,"
                    " record_id, previous_band, band, marker, state, updated_at)"
                    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 'pending', {p})"
                    " ON CONFLICT (account_key, as_of, model_version, rule, crm, record_id)"
                    " DO NOTHING"
                ),
                (t.account_key, self.as_of, self.version, t.rule.name, t.crm, t.record_id,
                 t.transition.previous_band, t.transition.band, mark, _now()),
            )  # fmt: skip
            return bool(tx.rowcount == 1)

    def claim_again(self, key: tuple[str, str, str, str], state: str, stamp: str) -> bool:
        """A row read as (``state``, ``stamp``) made ``pending`` again before a new create call;
        False when it changed since it was read (another run claimed it)."""
        with self.store.transaction() as tx:
            tx.execute(
                self.store.sql(
                    "UPDATE wb_programs SET state = 'pending', error = NULL, updated_at = {p}"
                    " WHERE account_key = {p} AND as_of = {p} AND model_version = {p}"
                    " AND rule = {p} AND crm = {p} AND record_id = {p}"
                    " AND state = {p} AND updated_at = {p}"
                ),
                (_now(), key[0], self.as_of, self.version, *key[1:], state, stamp),
            )
            return bool(tx.rowcount == 1)

    def mark(
        self,
        account_key: str,
        rule: str,
        crm: str,
        record_id: str,
        state: str,
        object_id: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.store.transaction() as tx:
            self._set(tx, account_key, rule, crm, record_id, state, object_id, error)

    def _set(
        self,
        tx: Any,
        account_key: str,
        rule: str,
        crm: str,
        record_id: str,
        state: str,
        object_id: str | None,
        error: str | None,
    ) -> None:
        tx.execute(
            self.store.sql(
                "UPDATE wb_programs SET state = {p}, object_id = COALESCE({p}, object_id),"
                " error = {p}, updated_at = {p} WHERE account_key = {p} AND as_of = {p}"
                " AND model_version = {p} AND rule = {p} AND crm = {p} AND record_id = {p}"
            ),
            (state, object_id, error, _now(), account_key, self.as_of, self.version, rule, crm,
             record_id),
        )  # fmt: skip


def run_programs(
    store: Store,
    writers: Iterable[object],
    rules: Sequence[Mapping[str, Any] | Rule] | None,
    as_of: str,
    model_version: str,
    *,
    today: dt.date | None = None,
) -> ProgramReport:
    """Create the follow-ups of the transitions into (as_of, model_version), once each."""
    ensure_table(store)
    parsed = rules_from_settings(rules)
    as_of = str(as_of)
    report = ProgramReport(as_of, model_version)
    moved = transitions(store, as_of, model_version)
    targets = _targets(store, parsed, moved)
    report.transitions = len({(t.account_key, t.rule.name) for t in targets})
    journal = _Journal(store, as_of, model_version)
    done = journal.rows()
    by_crm: dict[str, list[_Target]] = defaultdict(list)
    for t in targets:
        by_crm[t.crm].append(t)
    day = today or dt.datetime.now(dt.timezone.utc).date()
    for writer in writers:
        if not isinstance(writer, Followups):
            continue  # a CRM whose connector makes no follow-ups
        mine = by_crm.pop(writer.crm, [])
        for n, t in enumerate(mine):
            key = (t.account_key, t.rule.name, t.crm, t.record_id)
            state, _, stamp = done.get(key, ("", None, ""))
            if state in ("created", "deleted", "cancelled", "kept"):
                report.already += 1
                continue
            mark = marker(t.rule.name, as_of, model_version)
            sent = False  # whether the create call was made (its row is pending, committed)
            try:
                if state == "pending":  # ambiguous: did the last try make it?
                    existing = writer.find_followup(t.record_id, mark)
                    if existing is not None:
                        journal.mark(*key, "created", existing)
                        report.found.append((t.crm, t.record_id, existing))
                        continue
                subject, body = _texts(t, as_of, mark, writer.followup_kind)
                claimed = (
                    journal.claim_again(key, state, stamp) if state else journal.claim(t, mark)
                )
                if not claimed:  # another run has it: that run makes it, or leaves it pending
                    report.already += 1
                    continue
                sent = True
                object_id = writer.create_followup(
                    t.record_id,
                    subject,
                    body,
                    marker=mark,
                    due=day + dt.timedelta(days=t.rule.due_days),
                )
            except CrmError as err:
                if sent and _surely_not_sent(err):
                    journal.mark(*key, "failed", None, _code(err))
                    report.failed.append((t.crm, t.record_id, _code(err)))
                else:  # left pending: the next run looks it up before creating again
                    report.pending.append((t.crm, t.record_id))
                log.warning("%s %s: follow-up not made (%s)", t.crm, t.record_id, _code(err))
                if isinstance(err, _CRM_WIDE):
                    report.waiting.extend((x.crm, x.record_id) for x in mine[n + 1 :])
                    break
                continue
            journal.mark(*key, "created", object_id)
            report.created.append((t.crm, t.record_id, object_id))
    for crm, rest in by_crm.items():  # no adapter for that CRM in this run
        report.waiting.extend((crm, t.record_id) for t in rest)
    log.info("retention programs %s (%s): %s", as_of, model_version, report.counts())
    return report


@dataclass
class ProgramRollback:
    as_of: str | None
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, object id
    gone: int = 0  # journaled created, no longer in the CRM (deleted by a person, or by us)
    cancelled: int = 0  # pending or failed: closed, nothing (left) to delete
    kept: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, why: a person's
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, error


def rollback_programs(
    store: Store,
    writers: Iterable[FollowupWriter],
    as_of: str | None = None,
    model_version: str | None = None,
) -> ProgramRollback:
    """Delete the follow-ups made for the transitions of snapshot ``as_of`` (default: the latest
    with any; of ``model_version`` only, if given), journaled: ``deleted`` after each delete,
    ``cancelled`` for follow-ups never (certainly) made, after a lookup of the pending ones,
    ``kept`` for one a person completed or edited (left in the CRM, reported).
    Idempotent: run again, it finds nothing open and makes no call. A follow-up whose delete
    fails stays ``created`` for the next try."""
    ensure_table(store)
    if as_of is None:
        latest = store.query("SELECT MAX(as_of) FROM wb_programs")[0][0]
        if latest is None:
            return ProgramRollback(None)
        as_of = str(latest)
    report = ProgramRollback(str(as_of))
    rows = store.query(
        "SELECT account_key, model_version, rule, crm, record_id, state, object_id, marker"
        " FROM wb_programs WHERE as_of = {p} AND state IN ('pending', 'created', 'failed')"
        + (" AND model_version = {p}" if model_version is not None else "")
        + " ORDER BY crm, record_id",
        (as_of,) if model_version is None else (as_of, model_version),
    )
    by_crm = {w.crm: w for w in writers}
    for account_key, version, rule, crm, record_id, state, object_id, mark in rows:
        journal = _Journal(store, str(as_of), str(version))
        key = (str(account_key), str(rule), str(crm), str(record_id))
        writer = by_crm.get(str(crm))
        if writer is None:
            report.failed.append((str(crm), str(record_id), "no adapter for this CRM"))
            continue
        try:
            if state == "pending":
                object_id = writer.find_followup(str(record_id), str(mark))
            if state == "failed" or object_id is None:
                journal.mark(*key, "cancelled")
                report.cancelled += 1
                continue
            kept = getattr(writer, "followup_kept", None)
            why = kept(str(object_id)) if kept is not None else None
            if why is not None:  # completed or edited by a person: theirs now, left and reported
                journal.mark(*key, "kept", str(object_id))
                report.kept.append((str(crm), str(record_id), why))
                continue
            if writer.delete_followup(str(object_id)):
                report.deleted.append((str(crm), str(record_id), str(object_id)))
            else:
                report.gone += 1
        except CrmError as err:
            report.failed.append((str(crm), str(record_id), _code(err)))
            log.warning("%s %s: follow-up not deleted (%s)", crm, record_id, _code(err))
            continue
        journal.mark(*key, "deleted", str(object_id))
    return report
