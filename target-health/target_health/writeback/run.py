"""One write-back run, as the target does it at the end of a run and ``target-health plan|apply``
do it on demand: the owned fields made sure of, a plan against the CRMs' current values, and
(unless a dry run) apply and the retention programs; one run at a time per store (runlock).

CRM-wide errors (credentials, scopes, quota) stop write-back, not the caller: the data stays
stored and measured, and the next run plans the unwritten changes again from the CRMs' values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crm_connectors.base import Followups
from crm_connectors.errors import CrmError

from ..runlock import exclusive, wait_seconds
from ..store import Store
from . import plan as wb
from .crm import writers
from .programs import ensure_table as ensure_program_table
from .programs import rollback_programs, run_programs

log = logging.getLogger("target_health")


def write_back(
    store: Store,
    config: Mapping[str, Any],
    rules: wb.Governance,
    *,
    measurement: tuple[str, str] | None = None,
    dry_run: bool = False,
    label: str = "target-health",
    locked: bool = False,
) -> dict[str, Any]:
    """Plan and, unless ``dry_run``, apply, holding the store's write-back lock as ``label``
    (runlock: raises StoreBusy when another run holds it too long), or within the caller's hold
    of it (``locked``: the target holds it from its measurement on); returns the run's summary
    (also on errors)."""
    if locked:
        return _write_back(store, config, rules, measurement, dry_run)
    with exclusive(store, label, wait_seconds(config)):
        return _write_back(store, config, rules, measurement, dry_run)


def _write_back(
    store: Store,
    config: Mapping[str, Any],
    rules: wb.Governance,
    measurement: tuple[str, str] | None,
    dry_run: bool,
) -> dict[str, Any]:
    try:
        crm_writers = writers(config)
    except CrmError as exc:
        log.error("write-back not started: %s", exc)
        return {"error": str(exc)}
    try:
        ready = []
        for writer in crm_writers:  # the owned fields, created if missing (idempotent)
            setup = writer.ensure_fields(create=not dry_run)
            if setup.created:
                log.info("%s: created %s", writer.crm, ", ".join(setup.created))
            if setup.ok:
                ready.append(writer)
            else:
                log.error("%s: not written back: %s", writer.crm, setup.message)
        plan = wb.make_plan(store, ready, rules, measurement)
        out: dict[str, Any] = {"plan_id": plan.plan_id, "as_of": plan.as_of, **plan.counts()}
        if plan.status == "held":  # by the brake: nothing is written until approved
            out["status"] = "held"
        if plan.reason:
            log.warning("write-back plan %s: %s", plan.plan_id, plan.reason)
        if dry_run:
            log.info("write-back dry run: plan %s saved, nothing written", plan.plan_id)
            return out | {"dry_run": True}
        report = wb.apply(store, plan, ready)
        out |= {"calls": report.calls, "applied": report.applied, "failed": report.failed}
        if plan.status != "held":  # a held plan (the brake) starts no program either
            programs = (config.get("writeback") or {}).get("programs")
            started = run_programs(store, ready, programs, plan.as_of, plan.model_version)
            out["programs"] = {
                "transitions": started.transitions,
                "created": len(started.created),
                "failed": len(started.failed),
                "pending": len(started.pending),
            }
    except CrmError as exc:
        log.error("write-back stopped: %s", exc)
        return {"error": str(exc)}
    finally:
        for writer in crm_writers:
            writer.close()
    log.info(
        "write-back plan %s: %d records written, %d failed, calls %s",
        plan.plan_id,
        report.applied,
        len(report.failed),
        report.calls,
    )
    return out


def roll_back(store: Store, config: Mapping[str, Any], plan_id: str) -> dict[str, Any]:
    """Undo a plan: its fields' before-values restored (conflicts reported), then the follow-ups
    started for its snapshot deleted (plan.rollback, programs.rollback_programs). Raises KeyError
    for an unknown plan."""
    return _undo(store, config, [plan_id])


def roll_back_model(store: Store, config: Mapping[str, Any], model_version: str) -> dict[str, Any]:
    """Undo a bad model: every applied plan of ``model_version``. Each field it changed goes
    back to what it held before the model's first plan that changed it (one write, however many
    plans wrote it since); a field changed since by a person or by another model's plan is left
    and reported as a conflict; the follow-ups of each of its snapshots are deleted. Raises
    KeyError when the model has no applied plan."""
    wb.ensure_tables(store)
    ensure_program_table(store)
    # The plans that wrote something, or whose snapshot's follow-ups are still open (dry runs
    # and plans the brake held are left out: there is nothing of theirs to undo).
    plans = store.query(
        "SELECT p.plan_id FROM wb_plans p WHERE p.model_version = {p} AND p.kind = 'apply'"
        " AND (EXISTS (SELECT 1 FROM wb_items i WHERE i.plan_id = p.plan_id"
        " AND i.state IN ('applied', 'sending')) OR EXISTS (SELECT 1 FROM wb_programs g"
        " WHERE g.as_of = p.as_of AND g.model_version = p.model_version"
        " AND g.state IN ('pending', 'created', 'failed')))"
        " ORDER BY p.created_at",
        (model_version,),
    )
    if not plans:
        raise KeyError(f"no applied write-back plan of model {model_version!r}")
    return {"model_version": model_version} | _undo(store, config, [str(p) for (p,) in plans])


def _undo(store: Store, config: Mapping[str, Any], plan_ids: list[str]) -> dict[str, Any]:
    """Fields of ``plan_ids`` (oldest first) restored, then the follow-ups of their snapshots
    deleted, newest snapshot first (a rollback's rollback restores fields only)."""
    crm_writers = writers(config)
    try:
        report = wb.rollback(store, plan_ids, crm_writers)
        out: dict[str, Any] = {
            "rollback": report.plan_id,
            "of": report.of if len(plan_ids) == 1 else plan_ids[::-1],
            "restored": report.restored, "conflicts": report.conflicts,
            "calls": report.apply.calls if report.apply else {},
            "failed": report.apply.failed if report.apply else [],
        }  # fmt: skip
        snapshots: list[tuple[str, str]] = []
        for plan_id in plan_ids[::-1]:
            (as_of, version, kind), = store.query(
                "SELECT as_of, model_version, kind FROM wb_plans WHERE plan_id = {p}", (plan_id,)
            )  # fmt: skip
            if kind != "rollback" and (str(as_of), str(version)) not in snapshots:
                snapshots.append((str(as_of), str(version)))
        if snapshots:
            followups = [w for w in crm_writers if isinstance(w, Followups)]
            total: dict[str, Any] = {"deleted": 0, "gone": 0, "cancelled": 0, "failed": 0,
                                     "kept": []}  # fmt: skip
            for as_of, version in snapshots:
                undone = rollback_programs(store, followups, as_of, version)
                total["kept"] += undone.kept
                total["deleted"] += len(undone.deleted)
                total["gone"] += undone.gone
                total["cancelled"] += undone.cancelled
                total["failed"] += len(undone.failed)
                out["failed"] = out["failed"] + undone.failed
            out["followups"] = total
    finally:
        for writer in crm_writers:
            writer.close()
    return out
