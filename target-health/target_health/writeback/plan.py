"""Plan, then apply: what target-health writes into each CRM, journaled before it is written.

**Desired values.** For every customer in the latest snapshot of scores, each of its live account
records in a CRM (the store's account rows) should show the owned fields (fields.py): score,
band, trend, top factors, segment, NPS, model version, and updated-at. Updated-at is the snapshot
date, written only together with a change of another field, so that a new day with unchanged
scores changes nothing.

**Plan.** The current values of those fields are read from each CRM in its largest batches; a
plan item is one (CRM, record, field, before, after) whose value differs. Plans and their items
live in the store (``wb_plans``, ``wb_items``) *before* anything is written: the before-values
are the journal that rollback restores. A plan with no item makes no write call.

**Apply.** Items are sent per record, records in batches of the CRM's maximum (HubSpot 100,
Salesforce 200, Intercom 1); each batch's items are marked ``sending`` durably before the call
and ``applied`` or ``failed`` after it, per record. A crash at any point leaves items ``sending``
or ``pending``; the next run plans afresh from the CRM's current values, so changes already made
are not made again and the rest are: runs converge, with no duplicate side effects (field writes
are absolute values, so a repeated write is harmless too).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..store import Store
from .fields import BY_KEY, InvalidValue, to_canonical

log = logging.getLogger(__name__)

_DDL = (
    """CREATE TABLE IF NOT EXISTS wb_plans (
        plan_id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        as_of TEXT NOT NULL,
        model_version TEXT NOT NULL,
        status TEXT NOT NULL,
        kind TEXT NOT NULL,
        counts TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS wb_items (
        plan_id TEXT NOT NULL,
        crm TEXT NOT NULL,
        record_id TEXT NOT NULL,
        field TEXT NOT NULL,
        account_key TEXT NOT NULL,
        before TEXT NOT NULL,
        after TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        PRIMARY KEY (plan_id, crm, record_id, field)
    )""",
)


class Writer(Protocol):
    """A CRM adapter (crm.py): reads and writes the owned fields of its account records."""

    crm: str
    batch_max: int

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def write(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Item:
    crm: str
    record_id: str
    field: str
    account_key: str
    before: Any
    after: Any


@dataclass
class Plan:
    plan_id: str
    as_of: str
    model_version: str
    kind: str = "apply"  # apply | rollback
    items: list[Item] = field(default_factory=list)
    status: str = "planned"  # planned | held | applying | applied | partly applied | ...
    held: set[tuple[str, str]] = field(default_factory=set)  # (crm, record) awaiting approval
    reason: str = ""

    def counts(self) -> dict[str, Any]:
        records = {(i.crm, i.record_id) for i in self.items}
        by_crm: dict[str, int] = defaultdict(int)
        for crm, _ in records:
            by_crm[crm] += 1
        out: dict[str, Any] = {
            "items": len(self.items),
            "records": len(records),
            "by_crm": dict(by_crm),
        }
        if self.held:
            out["held_records"] = len(self.held)
        if self.reason:
            out["reason"] = self.reason
        return out


def ensure_tables(store: Store) -> None:
    with store.transaction() as tx:
        for ddl in _DDL:
            tx.execute(ddl)


def latest_measurement(store: Store) -> tuple[str, str] | None:
    """(as_of, model_version) of the latest run that measured: what write-back publishes."""
    for (counts,) in store.query(
        "SELECT counts FROM runs WHERE status = 'succeeded'"
        " ORDER BY finished_at DESC, started_at DESC"
    ):
        measured = json.loads(counts).get("measured")
        if measured:
            return str(measured["as_of"]), str(measured["model_version"])
    return None


def _factors_text(factors: Sequence[Mapping[str, Any]], limit: int = 255) -> str:
    text = "; ".join(str(f.get("text")) for f in factors if f.get("text"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def desired(
    store: Store, measurement: tuple[str, str] | None = None
) -> tuple[str, str, dict[tuple[str, str], tuple[str, dict[str, Any]]]]:
    """``(as_of, model_version, {(crm, record_id): (account_key, {field: value})})`` from the
    latest measurement, for every live account record of each scored customer. Field names are the
    logical ones of fields.py (score, band, trend, factors, segment, nps, model_version)."""
    latest = measurement or latest_measurement(store)
    if latest is None:
        return "", "", {}
    as_of, version = latest
    out: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for key, crm, account_key, score, band, segment, trend, nps, factors in store.stream(
        "SELECT r.key, r.crm, s.account_key, s.score, s.band, s.segment, s.trend, s.nps,"
        " s.factors FROM scores s JOIN records r"
        " ON r.entity = 'account' AND r.account_ref = s.account_key AND r.deleted = 0"
        " WHERE s.as_of = {p} AND s.model_version = {p} ORDER BY r.key",
        (as_of, version),
    ):
        record_id = str(key).split(":", 2)[2]
        out[(str(crm), record_id)] = (
            str(account_key),
            {
                "score": score,
                "band": band,
                "trend": trend,
                "factors": _factors_text(json.loads(factors)),
                "segment": segment,
                "nps": nps,
                "model_version": version,
            },
        )
    return as_of, version, out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-9
    return bool(a == b)


def make_plan(
    store: Store,
    writers: Iterable[Writer],
    rules: Governance | None = None,
    measurement: tuple[str, str] | None = None,
) -> Plan:
    """Read the CRMs' current values and plan the differences, under the brake and approval
    gate of ``rules``; the plan is saved before return. ``measurement`` (as_of, model version)
    defaults to the latest run's."""
    ensure_tables(store)
    ownership = dict(rules.ownership) if rules is not None else {}
    as_of, version, want = desired(store, measurement)
    plan = Plan(uuid.uuid4().hex[:12], as_of, version)
    by_crm: dict[str, list[str]] = defaultdict(list)
    for crm, record_id in want:
        by_crm[crm].append(record_id)
    for writer in writers:
        ids = by_crm.get(writer.crm, [])
        if not ids:
            continue
        current = writer.read(ids)
        last = last_written(store, writer.crm) if ownership else {}
        for record_id in ids:
            account_key, wanted = want[(writer.crm, record_id)]
            try:
                values = to_canonical(wanted)  # as the CRM will hold it (rounding, length)
            except InvalidValue as exc:
                log.warning("%s %s: not written: %s", writer.crm, record_id, exc)
                continue
            now = current.get(record_id, {})
            changed = [
                f
                for f, v in values.items()
                if not _same(now.get(f), v)
                and owned(
                    ownership.get(f, OVERWRITE), now.get(f), last.get((writer.crm, record_id, f))
                )
            ]
            if not changed:
                continue
            changed.append("updated_at")
            values = {**values, "updated_at": f"{as_of}T00:00:00Z"}
            for name in changed:
                plan.items.append(
                    Item(writer.crm, record_id, name, account_key, now.get(name), values[name])
                )
    if rules is not None:
        govern(store, plan, rules, len({account for account, _ in want.values()}))
    save(store, plan)
    return plan


def save(store: Store, plan: Plan) -> None:
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    with store.transaction() as tx:
        tx.execute(
            store.sql(
                "INSERT INTO wb_plans (plan_id, created_at, as_of, model_version, status, kind,"
                " counts) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
            ),
            (plan.plan_id, created, plan.as_of, plan.model_version, plan.status, plan.kind,
             json.dumps(plan.counts(), sort_keys=True)),
        )  # fmt: skip
        tx.executemany(
            store.sql(
                "INSERT INTO wb_items (plan_id, crm, record_id, field, account_key, before,"
                " after, state) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
            ),
            [
                (plan.plan_id, i.crm, i.record_id, i.field, i.account_key,
                 json.dumps(i.before), json.dumps(i.after),
                 "held" if plan.status == "held" or (i.crm, i.record_id) in plan.held
                 else "pending")
                for i in plan.items
            ],
        )  # fmt: skip


def _mark(
    store: Store, plan_id: str, crm: str, ids: Sequence[str], state: str, error: str | None = None
) -> None:
    with store.transaction() as tx:
        tx.executemany(
            store.sql(
                "UPDATE wb_items SET state = {p}, error = {p}"
                " WHERE plan_id = {p} AND crm = {p} AND record_id = {p}"
            ),
            [(state, error, plan_id, crm, i) for i in ids],
        )


def _set_status(store: Store, plan_id: str, status: str) -> None:
    with store.transaction() as tx:
        tx.execute(
            store.sql("UPDATE wb_plans SET status = {p} WHERE plan_id = {p}"),
            (status, plan_id),
        )


@dataclass
class ApplyReport:
    plan_id: str
    calls: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record id, error


def apply(store: Store, plan: Plan, writers: Iterable[Writer]) -> ApplyReport:
    """Send a saved plan's changes, journaling each batch before and after its call."""
    report = ApplyReport(plan.plan_id)
    records: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    if plan.status == "held":
        return report  # the brake: nothing is written until someone approves
    for item in plan.items:
        if (item.crm, item.record_id) not in plan.held:
            records[item.crm][item.record_id][item.field] = item.after
    _set_status(store, plan.plan_id, "applying")
    for writer in writers:
        changes = sorted(records.get(writer.crm, {}).items())
        report.calls[writer.crm] = 0
        for start in range(0, len(changes), writer.batch_max):
            batch = changes[start : start + writer.batch_max]
            ids = [record_id for record_id, _ in batch]
            _mark(store, plan.plan_id, writer.crm, ids, "sending")
            results = writer.write(batch)
            report.calls[writer.crm] += 1
            ok = [r.id for r in results if r.ok]
            _mark(store, plan.plan_id, writer.crm, ok, "applied")
            report.applied += len(ok)
            for r in results:
                if not r.ok:
                    _mark(store, plan.plan_id, writer.crm, [r.id], "failed", r.error_code)
                    report.failed.append((writer.crm, r.id, str(r.error_code)))
        if changes:  # one line per CRM, whatever its batch size (Intercom writes one by one)
            failed = sum(1 for crm, _, _ in report.failed if crm == writer.crm)
            log.info("%s: wrote %d record(s) in %d call(s), %d failed", writer.crm,
                     len(changes) - failed, report.calls[writer.crm], failed)  # fmt: skip
    status = "applied" if not report.failed else "partly applied"
    _set_status(
        store, plan.plan_id, "awaiting approval" if plan.held and not report.failed else status
    )
    return report


# -- governance ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Governance:
    """The brake and the approval gate (settings ``writeback.*``)."""

    #: Hold the whole plan when more than this share of the scored accounts would change band
    #: (first fills - no band in the CRM yet - do not count).
    max_band_change_share: float = 0.2
    #: ... and at least this many accounts are scored (small books move in big steps).
    min_accounts: int = 20
    #: Hold the whole plan when the mean score of the scored accounts would move by more than
    #: this many points against the values in the CRMs.
    max_mean_score_shift: float = 15.0
    #: Band changes of accounts with at least this ARR wait for approval (None: no threshold).
    approval_arr: float | None = None
    #: Band changes of these canonical accounts (ext:ACC-..., dom:...) wait for approval.
    approval_accounts: frozenset[str] = frozenset()
    #: Per owned field: overwrite (default), fill_if_empty, or skip_if_edited.
    ownership: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> Governance:
        given = dict(settings or {})
        arr = given.get("approval_arr")
        ownership = dict(given.get("ownership") or {})
        for name, mode in ownership.items():
            if name not in BY_KEY or name == "updated_at":
                owned_keys = ", ".join(k for k in BY_KEY if k != "updated_at")
                raise ValueError(f"writeback.ownership.{name}: not an owned field ({owned_keys})")
            if mode not in MODES:
                raise ValueError(f"writeback.ownership.{name}: must be one of {', '.join(MODES)}")
        return cls(
            max_band_change_share=float(given.get("max_band_change_share", 0.2)),
            min_accounts=int(given.get("min_accounts", 20)),
            max_mean_score_shift=float(given.get("max_mean_score_shift", 15.0)),
            approval_arr=float(arr) if arr is not None else None,
            approval_accounts=frozenset(str(a) for a in given.get("approval_accounts") or ()),
            ownership=ownership,
        )


OVERWRITE, FILL_IF_EMPTY, SKIP_IF_EDITED = "overwrite", "fill_if_empty", "skip_if_edited"
MODES = (OVERWRITE, FILL_IF_EMPTY, SKIP_IF_EDITED)
_NEVER = object()  # no write of ours on record


def owned(mode: str, now: Any, last: Any = _NEVER) -> bool:
    """May a field holding ``now`` be overwritten under ``mode``? ``last`` is the value our last
    applied write left there (``_NEVER`` when we never wrote it)."""
    if mode == FILL_IF_EMPTY:
        return now is None
    if mode == SKIP_IF_EDITED:
        if now is None:
            return True
        return last is not _NEVER and _same(now, last)  # a person's value is kept
    return True


def last_written(store: Store, crm: str) -> dict[tuple[str, str, str], Any]:
    """(crm, record, field) -> the value of our latest applied write there (apply or rollback)."""
    out: dict[tuple[str, str, str], Any] = {}
    for record_id, name, after in store.stream(
        "SELECT i.record_id, i.field, i.after FROM wb_items i JOIN wb_plans p"
        " ON p.plan_id = i.plan_id WHERE i.crm = {p} AND i.state = 'applied'"
        " ORDER BY p.created_at",
        (crm,),
    ):
        out[(crm, str(record_id), str(name))] = json.loads(after)
    return out


def _arr_by_account(store: Store, keys: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, data in store.stream(
        "SELECT account_ref, data FROM records WHERE entity = 'account' AND deleted = 0"
    ):
        if key in keys:
            arr = json.loads(data).get("arr")
            if isinstance(arr, int | float):
                out[key] = max(out.get(key, 0.0), float(arr))
    return out


def govern(store: Store, plan: Plan, rules: Governance, scored_accounts: int) -> None:
    """Apply the brake and the approval gate to an unsaved plan (sets status / held records)."""
    moved = {
        i.account_key
        for i in plan.items
        if i.field == "band" and i.before is not None and not _same(i.before, i.after)
    }
    if scored_accounts >= rules.min_accounts and moved:
        share = len(moved) / scored_accounts
        if share > rules.max_band_change_share:
            plan.status = "held"
            plan.reason = (
                f"blast-radius brake: {len(moved)} of {scored_accounts} accounts"
                f" ({share:.0%}) would change band, above {rules.max_band_change_share:.0%};"
                f" approve with {approve_hint(plan.plan_id)}"
            )
            return
    # ... or the whole distribution moving: the mean score of the scored accounts shifting by
    # more than max_mean_score_shift points against what the CRMs show (first fills excluded).
    deltas: dict[str, float] = {}
    for i in plan.items:
        if (
            i.field == "score"
            and isinstance(i.before, int | float)
            and isinstance(i.after, int | float)
        ):
            deltas.setdefault(i.account_key, float(i.after) - float(i.before))
    if scored_accounts >= rules.min_accounts and deltas:
        shift = sum(deltas.values()) / scored_accounts
        if abs(shift) > rules.max_mean_score_shift:
            plan.status = "held"
            plan.reason = (
                f"blast-radius brake: the mean score would move {shift:+.1f} points, beyond"
                f" {rules.max_mean_score_shift:g}; approve with {approve_hint(plan.plan_id)}"
            )
            return
    gated = {k for k in moved if k in rules.approval_accounts}
    if rules.approval_arr is not None:
        arr = _arr_by_account(store, moved - gated)
        gated |= {k for k, v in arr.items() if v >= rules.approval_arr}
    if gated:
        plan.held = {(i.crm, i.record_id) for i in plan.items if i.account_key in gated}
        plan.reason = (
            f"{len(gated)} high-value account(s) changing band await approval:"
            f" {approve_hint(plan.plan_id)}"
        )


def approve_hint(plan_id: str) -> str:
    """How to approve a held plan, outside Meltano and in a Meltano project (where the command
    runs on the project's own settings)."""
    return (
        f"`target-health approve {plan_id}` (in a Meltano project:"
        f" `meltano invoke target-health:approve {plan_id}`)"
    )


def decide(store: Store, plan_id: str, approve: bool, writers: Iterable[Writer]) -> ApplyReport:
    """Approve (write the held changes that still hold their before-values) or reject them."""
    ensure_tables(store)
    found = store.query("SELECT as_of, model_version FROM wb_plans WHERE plan_id = {p}", (plan_id,))
    if not found:
        raise KeyError(f"no write-back plan {plan_id!r}")
    held = [i for i, state in load_items(store, plan_id) if state == "held"]
    if not approve:
        for crm in {i.crm for i in held}:
            _mark(
                store, plan_id, crm, sorted({i.record_id for i in held if i.crm == crm}), "rejected"
            )
        _set_status(store, plan_id, "rejected")
        return ApplyReport(plan_id)
    approved = Plan(plan_id, str(found[0][0]), str(found[0][1]))
    writers = list(writers)
    conflicts: list[tuple[str, str, str]] = []
    for writer in writers:
        mine = [i for i in held if i.crm == writer.crm]
        if not mine:
            continue
        current = writer.read(sorted({i.record_id for i in mine}))
        for item in mine:
            now = current.get(item.record_id, {}).get(item.field)
            if _same(now, item.before) or _same(now, item.after):
                approved.items.append(item)
            else:
                conflicts.append((item.crm, item.record_id, item.field))
    report = apply(store, approved, writers)
    for crm, record_id, name in conflicts:
        _mark(store, plan_id, crm, [record_id], "conflict")
        report.failed.append((crm, record_id, f"conflict: {name} changed since the plan"))
    return report


@dataclass
class RollbackReport:
    plan_id: str  # the rollback's own plan
    of: str  # the plan rolled back
    restored: int = 0  # records restored
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # crm, record, field
    apply: ApplyReport | None = None


def load_items(store: Store, plan_id: str) -> list[tuple[Item, str]]:
    rows = store.query(
        "SELECT crm, record_id, field, account_key, before, after, state FROM wb_items"
        " WHERE plan_id = {p} ORDER BY crm, record_id, field",
        (plan_id,),
    )
    return [
        (Item(crm, rid, name, acct, json.loads(before), json.loads(after)), state)
        for crm, rid, name, acct, before, after, state in rows
    ]


def rollback(
    store: Store, plan_id: str | Sequence[str], writers: Iterable[Writer]
) -> RollbackReport:
    """Restore the before-values of a plan's applied (or possibly applied) changes. A field that
    holds neither the plan's value nor its before-value was changed by a person since: it is
    left alone and reported as a conflict. The rollback is a plan of its own (journaled, so it
    can be rolled back too) and idempotent: run again, it finds nothing left to restore.

    Given several plans (oldest first: a model's, ``target-health rollback --model-version``),
    each field goes back to its before-value in the oldest plan that changed it, when it still
    holds a value one of them wrote; one write per field, whatever the number of plans."""
    ensure_tables(store)
    ids = [plan_id] if isinstance(plan_id, str) else list(plan_id)
    found = {
        pid: store.query("SELECT as_of, model_version FROM wb_plans WHERE plan_id = {p}", (pid,))
        for pid in ids
    }
    for pid, rows in found.items():
        if not rows:
            raise KeyError(f"no write-back plan {pid!r}")
    as_of, version = found[ids[-1]][0]
    undo = Plan(uuid.uuid4().hex[:12], str(as_of), str(version), kind="rollback")
    report = RollbackReport(undo.plan_id, ids[-1])
    first: dict[tuple[str, str, str], Item] = {}  # the oldest change of each field
    written: dict[tuple[str, str, str], list[Any]] = defaultdict(list)  # every value written
    for pid in ids:
        for item, state in load_items(store, pid):
            if state in ("applied", "sending"):
                key = (item.crm, item.record_id, item.field)
                first.setdefault(key, item)
                written[key].append(item.after)
    writers = list(writers)
    for writer in writers:
        mine = [(k, i) for k, i in first.items() if i.crm == writer.crm]
        if not mine:
            continue
        current = writer.read(sorted({i.record_id for _, i in mine}))
        restored: set[str] = set()
        for key, item in mine:
            now = current.get(item.record_id, {}).get(item.field)
            if _same(now, item.before):
                continue  # already as before (never applied, or rolled back already)
            if not any(_same(now, value) for value in written[key]):
                report.conflicts.append(key)
                continue
            undo.items.append(
                Item(item.crm, item.record_id, item.field, item.account_key, now, item.before)
            )
            restored.add(item.record_id)
        report.restored += len(restored)
    save(store, undo)
    report.apply = apply(store, undo, writers)
    return report
