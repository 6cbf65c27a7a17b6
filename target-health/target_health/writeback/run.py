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
) -> dict[str, Any]:
    """Plan and, unless ``dry_run``, apply, holding the store's write-back lock as ``label``
    (runlock: raises StoreBusy when another run holds it too long); returns the run's summary
    (also on errors)."""
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
    crm_writers = writers(config)
    try:
        report = wb.rollback(store, plan_id, crm_writers)
        (as_of, version, kind), = store.query(
            "SELECT as_of, model_version, kind FROM wb_plans WHERE plan_id = {p}", (plan_id,)
        )  # fmt: skip
        out: dict[str, Any] = {
            "rollback": report.plan_id, "of": report.of, "restored": report.restored,
            "conflicts": report.conflicts, "calls": report.apply.calls if report.apply else {},
            "failed": report.apply.failed if report.apply else [],
        }  # fmt: skip
        if kind != "rollback":  # a rollback's rollback restores fields only
            followups = [w for w in crm_writers if isinstance(w, Followups)]
            undone = rollback_programs(store, followups, str(as_of), str(version))
            out["followups"] = {
                "deleted": len(undone.deleted), "gone": undone.gone,
                "cancelled": undone.cancelled, "failed": len(undone.failed),
            }  # fmt: skip
            out["failed"] = out["failed"] + undone.failed
    finally:
        for writer in crm_writers:
            writer.close()
    return out
