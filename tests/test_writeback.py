"""Write-back end to end: scores measured by the pipeline, planned against each CRM's current
values, applied in the largest batches, rolled back, braked and gated.

Given a sandbox with the three CRMs, the store target-health filled from tap-crm's output and
measured as of the world's "now", and the owned fields created in each CRM, then:
- apply writes exactly the planned values, with ceil(records / batch maximum) write calls per CRM,
  and a rerun with no change plans nothing and makes no write call;
- rollback restores every before-value, skips and reports a field a person changed since, and is
  itself idempotent;
- the blast-radius brake holds a plan that would move too many bands, and the approval gate holds
  a high-value account's band change, until approved;
- a kill -9 in the middle of apply, then a rerun, converges to the state of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tapkit import WRITE_ROUTES, crm_values, run_tap, tap_config

from crm_connectors.http import RetryPolicy
from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.world import WorldSpec
from target_health.runlock import exclusive
from target_health.store import Store, open_store
from target_health.writeback import plan as wb
from target_health.writeback.crm import writers
from target_health.writeback.fields import to_canonical

AS_OF = str(WorldSpec().anchor.date())
#: Where each CRM's writes go (the sandbox counts matches of a zero-delay "slow" fault).


def _target(workdir: Path, messages: list[dict[str, Any]], **config: Any) -> None:
    config = {"database_url": f"sqlite:///{workdir / 'health.sqlite'}", "as_of": AS_OF} | config
    (workdir / "target.json").write_text(json.dumps(config))
    lines = "".join(json.dumps(m) + "\n" for m in messages)
    done = subprocess.run(
        [sys.executable, "-m", "target_health.target", "--config", str(workdir / "target.json")],
        input=lines, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@contextmanager
def pipeline(
    make_sandbox: Any, tmp_path: Path, size: int = 40
) -> Iterator[tuple[Sandbox, Store, dict[str, Any], list[dict[str, Any]]]]:
    """A sandbox, its data through tap-crm and target-health, and the owned fields created."""
    sandbox = make_sandbox(size=size, seed_value=11)
    config = tap_config(sandbox, hubspot_search_requests_per_second=1000)
    run = run_tap(tmp_path / "tap", config)
    assert run.returncode == 0, run.stderr[-3000:]
    _target(tmp_path, run.messages)
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    for writer in writers(config):
        with writer:
            report = writer.ensure_fields()
            assert report.ok, report.message
    yield sandbox, store, config, run.messages


def _count_writes(sandbox: Sandbox) -> None:
    for crm, (method, path) in WRITE_ROUTES.items():
        sandbox.ctx.faults.add(Fault("slow", vendor=crm, method=method, path=path, delay=0))


def _writes(sandbox: Sandbox) -> dict[str, int]:
    by_path = {(f["vendor"], f["path"]): f["matched"] for f in sandbox.ctx.faults.list()}
    return {crm: by_path.get((crm, path), 0) for crm, (_, path) in WRITE_ROUTES.items()}


def _assert_crms_hold_the_scores(store: Store, config: dict[str, Any]) -> None:
    """Every live account record in each CRM shows its customer's latest scores."""
    _, _, want = wb.desired(store)
    ids: dict[str, list[str]] = {}
    for crm, rid in want:
        ids.setdefault(crm, []).append(rid)
    now = crm_values(config, ids)
    for (crm, rid), (_, values) in want.items():
        expected = to_canonical(values) | {"updated_at": f"{AS_OF}T00:00:00Z"}
        assert now[(crm, rid)] == expected, (crm, rid)


def test_apply_writes_the_planned_values_in_full_batches_and_a_rerun_writes_nothing(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        _count_writes(sandbox)
        # When a plan is made and applied
        plan = wb.make_plan(store, writers(config))
        report = wb.apply(store, plan, writers(config))
        # then every record got its values, none failed
        assert plan.items and not report.failed
        _assert_crms_hold_the_scores(store, config)
        # and each CRM took ceil(records / batch maximum) write calls
        batch = {w.crm: w.batch_max for w in writers(config)}
        writes = _writes(sandbox)
        for crm, records in plan.counts()["by_crm"].items():
            assert writes[crm] == math.ceil(records / batch[crm]), crm
        # and a rerun with no change plans nothing and writes nothing
        again = wb.make_plan(store, writers(config))
        assert again.items == []
        wb.apply(store, again, writers(config))
        assert _writes(sandbox) == writes


def test_rollback_restores_before_values_and_reports_what_a_person_changed(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, _):
        plan = wb.make_plan(store, writers(config))
        wb.apply(store, plan, writers(config))
        # Given a person changes one written field afterwards
        first = next(
            i
            for i in plan.items
            if i.crm == "hubspot" and i.field == "segment" and i.after != "stable"
        )
        (hubspot,) = [w for w in writers(config) if w.crm == "hubspot"]
        with hubspot:
            (result,) = hubspot.write([(first.record_id, {"segment": "stable"})])
            assert result.ok
        # when the plan is rolled back
        report = wb.rollback(store, plan.plan_id, writers(config))
        # then every other field is back to its before-value, the person's edit stays
        assert report.conflicts == [("hubspot", first.record_id, "segment")]
        ids: dict[str, list[str]] = {}
        for i in plan.items:
            ids.setdefault(i.crm, []).append(i.record_id)
        now = crm_values(config, ids)
        for i in plan.items:
            value = now[(i.crm, i.record_id)].get(i.field)
            if (i.crm, i.record_id, i.field) == ("hubspot", first.record_id, "segment"):
                assert value == "stable"
            else:
                assert value == i.before, (i.crm, i.record_id, i.field)
        # and a second rollback finds nothing left to restore and writes nothing
        again = wb.rollback(store, plan.plan_id, writers(config))
        assert (
            again.restored == 0 and again.apply is not None and not any(again.apply.calls.values())
        )
        runs = store.query("SELECT kind, status FROM wb_plans ORDER BY created_at")
        assert [k for k, _ in runs] == ["apply", "rollback", "rollback"]


def test_the_brake_holds_a_plan_that_moves_too_many_bands_until_approved(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, messages):
        rules = wb.Governance(max_band_change_share=0.2, min_accounts=5)
        wb.apply(store, wb.make_plan(store, writers(config), rules), writers(config))
        # Given a model change that moves most accounts' bands (healthy now needs 95)
        bands = [{"name": "healthy", "min": 95}, {"name": "neutral", "min": 80},
                 {"name": "at_risk", "min": 40}, {"name": "critical", "min": 0}]  # fmt: skip
        _target(tmp_path, messages, scoring={"health": {"bands": bands, "version": "strict"}})
        _count_writes(sandbox)
        # when the next plan is made under the brake
        plan = wb.make_plan(store, writers(config), rules)
        report = wb.apply(store, plan, writers(config))
        # then it is held, with the reason, and nothing is written
        assert plan.status == "held" and "blast-radius brake" in plan.reason
        assert not any(report.calls.values()) and not any(_writes(sandbox).values())
        # and once approved, its changes are written
        approved = wb.decide(store, plan.plan_id, True, writers(config))
        assert approved.applied == plan.counts()["records"] and not approved.failed


def test_a_held_write_back_exits_3_unless_held_is_success(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, messages):
        brake = {"enabled": True, "max_band_change_share": 0.2, "min_accounts": 5}
        wb.apply(store, wb.make_plan(store, writers(config)), writers(config))
        # Given a model change that moves most accounts' bands, under the brake
        bands = [{"name": "healthy", "min": 95}, {"name": "neutral", "min": 80},
                 {"name": "at_risk", "min": 40}, {"name": "critical", "min": 0}]  # fmt: skip
        scoring = {"health": {"bands": bands, "version": "strict"}}
        target = {"database_url": f"sqlite:///{tmp_path / 'health.sqlite'}", "as_of": AS_OF}
        run_dir = tmp_path / "held"
        run_dir.mkdir()

        def run(**writeback: Any) -> subprocess.CompletedProcess[str]:
            cfg = target | config | {"scoring": scoring, "writeback": brake | writeback}
            (run_dir / "cfg.json").write_text(json.dumps(cfg))
            return subprocess.run(
                [sys.executable, "-m", "target_health.target", "--config",
                 str(run_dir / "cfg.json")],
                input="".join(json.dumps(m) + "\n" for m in messages),
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip

        def apply(**writeback: Any) -> subprocess.CompletedProcess[str]:
            cfg = target | config | {"writeback": brake | writeback}
            (run_dir / "cli.json").write_text(json.dumps(cfg))
            return subprocess.run(
                [sys.executable, "-m", "target_health.target", "apply", "--config",
                 str(run_dir / "cli.json"), "--json"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip

        # when the target runs: it stores and measures, the brake holds, and it exits 3 with
        # one line saying what to do
        done = run()
        assert done.returncode == 3, done.stderr[-3000:]
        last = done.stderr.strip().splitlines()[-1]
        assert "is held (blast-radius brake" in last and "target-health approve|reject" in last
        assert store.query("SELECT status FROM runs ORDER BY finished_at DESC LIMIT 1") == [
            ("succeeded",)
        ]
        # and `apply` says the same by its exit code, or exits 0 when told a hold is success
        held = apply()
        assert held.returncode == 3 and json.loads(held.stdout)["status"] == "held"
        assert apply(held_is_success=True).returncode == 0
        # and an unreadable config is one line and exit 2
        bad = subprocess.run(
            [sys.executable, "-m", "target_health.target", "plan", "--config",
             str(run_dir / "missing.json")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert bad.returncode == 2 and bad.stderr.strip() == (
            f"target-health plan: --config {run_dir / 'missing.json'}: No such file or directory"
        )


def test_the_approval_gate_holds_a_high_value_band_change_only(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, messages):
        wb.apply(store, wb.make_plan(store, writers(config)), writers(config))
        bands = [{"name": "healthy", "min": 95}, {"name": "neutral", "min": 80},
                 {"name": "at_risk", "min": 40}, {"name": "critical", "min": 0}]  # fmt: skip
        _target(tmp_path, messages, scoring={"health": {"bands": bands, "version": "strict"}})
        # Given one account on the approval list whose band is about to change
        probe = wb.make_plan(store, writers(config))
        movers = sorted({i.account_key for i in probe.items if i.field == "band"})
        assert len(movers) >= 2
        rules = wb.Governance(max_band_change_share=1.0, approval_accounts=frozenset(movers[:1]))
        # when the plan is made and applied
        plan = wb.make_plan(store, writers(config), rules)
        wb.apply(store, plan, writers(config))
        # then that account's records are held, the others written
        held = {rid for crm, rid in plan.held}
        assert held and all(i.account_key == movers[0] for i in plan.items if i.record_id in held)
        assert wb.make_plan(store, writers(config), rules).counts()["records"] == len(plan.held)
        # and approving writes them
        wb.decide(store, plan.plan_id, True, writers(config))
        assert wb.make_plan(store, writers(config), rules).items == []


@pytest.mark.parametrize("at", [0.01, 0.5, 0.9])
def test_kill_9_during_apply_then_a_rerun_converges(
    make_sandbox: Any, tmp_path: Path, at: float
) -> None:
    with pipeline(make_sandbox, tmp_path, size=60) as (sandbox, store, config, _):
        target_config = json.loads((tmp_path / "target.json").read_text()) | config
        (tmp_path / "apply.json").write_text(json.dumps(target_config))
        cmd = [sys.executable, "-m", "target_health.target", "apply", "--config",
               str(tmp_path / "apply.json"), "--json"]  # fmt: skip
        # Given every Intercom company write takes a while (one record per call)
        method, path = WRITE_ROUTES["intercom"]
        sandbox.ctx.faults.add(
            Fault("slow", vendor="intercom", method=method, path=path, delay=0.1)
        )
        # when apply is killed with SIGKILL once `at` of the plan's changes are applied
        wb.ensure_tables(store)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            (total, applied), = store.query(
                "SELECT COUNT(*), SUM(CASE WHEN state = 'applied' THEN 1 ELSE 0 END) FROM wb_items"
            )  # fmt: skip
            if total and (applied or 0) >= max(1, at * total):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        partial = store.query("SELECT COUNT(*) FROM wb_items WHERE state != 'applied'")[0][0]
        assert partial > 0, "the kill came after apply finished"
        sandbox.ctx.faults.clear()
        # and apply runs again
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        # then the CRMs hold exactly what an uninterrupted run writes: nothing is left to plan
        assert wb.make_plan(store, writers(config)).items == []
        _assert_crms_hold_the_scores(store, config)


def test_two_applies_at_once_write_each_change_once(make_sandbox: Any, tmp_path: Path) -> None:
    with pipeline(make_sandbox, tmp_path, size=30) as (sandbox, _, config, _):
        target_config = json.loads((tmp_path / "target.json").read_text()) | config
        (tmp_path / "apply.json").write_text(json.dumps(target_config))
        cmd = [sys.executable, "-m", "target_health.target", "apply", "--config",
               str(tmp_path / "apply.json"), "--json"]  # fmt: skip
        # Given every CRM write counted
        _count_writes(sandbox)
        # when two applies start at once on the same store
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        # then both succeed: one writes the plan, the other waited and found nothing left
        assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
        results = sorted((json.loads(out) for out, _ in outs), key=lambda r: r["items"])
        assert results[0]["items"] == 0 and results[1]["items"] > 0
        assert not any(results[0]["calls"].values()) and not results[1]["failed"]
        # and each CRM got the write calls of one run, no more
        writes = _writes(sandbox)
        assert writes == {crm: results[1]["calls"].get(crm, 0) for crm in WRITE_ROUTES}
        assert all(writes.values())


def test_apply_stops_in_one_line_naming_the_run_that_holds_the_store(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (sandbox, store, config, _):
        target_config = json.loads((tmp_path / "target.json").read_text()) | config
        target_config["writeback"] = {"lock_wait_seconds": 0}
        (tmp_path / "apply.json").write_text(json.dumps(target_config))
        _count_writes(sandbox)
        # Given another write-back holding the store
        with exclusive(store, "target-health run held-by-test"):
            # when apply, rollback or approve runs without waiting
            done = [
                subprocess.run(
                    [sys.executable, "-m", "target_health.target", *command, "--config",
                     str(tmp_path / "apply.json")],
                    capture_output=True, text=True, timeout=120, check=False,
                )
                for command in (["apply"], ["rollback", "some-plan"], ["approve", "some-plan"])
            ]  # fmt: skip
        # then each fails, in one line naming the holder, and writes nothing
        for run in done:
            assert run.returncode == 1, run.stderr[-2000:]
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and "held-by-test" in lines[0] and "Traceback" not in run.stderr
        assert not any(_writes(sandbox).values())


@pytest.mark.parametrize("writeback_on", [True, False], ids=["write-back", "measure-only"])
def test_a_run_finding_the_store_held_keeps_its_data_and_exits_non_zero(
    make_sandbox: Any, tmp_path: Path, writeback_on: bool
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (sandbox, store, config, messages):
        _count_writes(sandbox)
        on = config | {"writeback": {"enabled": writeback_on, "lock_wait_seconds": 0}}
        (tmp_path / "run.json").write_text(
            json.dumps({"database_url": f"sqlite:///{tmp_path / 'health.sqlite'}",
                        "as_of": AS_OF} | on)
        )  # fmt: skip
        # Given another write-back holding the store, when the target runs, with or without
        # write-back
        with exclusive(store, "target-health apply (held by the test)"):
            done = subprocess.run(
                [sys.executable, "-m", "target_health.target", "--config",
                 str(tmp_path / "run.json")],
                input="".join(json.dumps(m) + "\n" for m in messages),
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
        # then it exits non-zero saying who holds the store, without a traceback
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "held by the test" in done.stderr.strip().splitlines()[-1]
        # and its records are stored, but not measured: the lock covers the measurement too,
        # so no run rewrites the scores a holder is planning from; the run records why
        status, counts = store.query(
            "SELECT status, counts FROM runs ORDER BY started_at DESC LIMIT 1"
        )[0]
        run = json.loads(counts)
        step = "writeback" if writeback_on else "measure"
        assert run["stored"] > 0 and "held by the test" in run[step]["error"]
        assert "measured" not in run and status == "failed"
        assert not any(_writes(sandbox).values())


def test_apply_exits_non_zero_when_a_crm_refuses_the_credentials(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (_, _store, config, _):
        # Given the target's config with a HubSpot token the CRM does not know
        bad = json.loads((tmp_path / "target.json").read_text()) | config
        bad["hubspot_access_token"] = "pat-revoked"
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        # when apply runs
        done = subprocess.run(
            [sys.executable, "-m", "target_health.target", "apply", "--config",
             str(tmp_path / "bad.json"), "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        # then it says what stopped write-back, and exits 1 for the scheduler to see
        assert done.returncode == 1, done.stderr[-2000:]
        assert "hubspot" in json.loads(done.stdout)["error"].lower()
        assert "pat-revoked" not in done.stdout + done.stderr


def test_the_setup_plan_and_runs_commands(make_sandbox: Any, tmp_path: Path) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (_, _store, config, _):
        target_config = json.loads((tmp_path / "target.json").read_text()) | config
        (tmp_path / "cfg.json").write_text(json.dumps(target_config))
        base = [sys.executable, "-m", "target_health.target"]
        # setup again: every owned field exists already, nothing is created
        setup = subprocess.run([*base, "setup", "--config", str(tmp_path / "cfg.json"), "--json"],
                               capture_output=True, text=True, check=False)  # fmt: skip
        assert setup.returncode == 0, setup.stderr[-2000:]
        reports = json.loads(setup.stdout)["setup"]
        assert {r["crm"] for r in reports} == {"hubspot", "salesforce", "intercom"}
        assert all(r["created"] == [] and len(r["existing"]) == 8 for r in reports)
        dry = subprocess.run([*base, "plan", "--config", str(tmp_path / "cfg.json"), "--json"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert dry.returncode == 0, dry.stderr[-2000:]
        planned = json.loads(dry.stdout)
        assert planned["items"] > 0
        runs = subprocess.run([*base, "runs", "--config", str(tmp_path / "cfg.json"), "--json"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        listed = json.loads(runs.stdout)["plans"]
        assert [(p["plan_id"], p["status"]) for p in listed] == [(planned["plan_id"], "planned")]
        assert listed[0]["as_of"] == planned["as_of"] and listed[0]["model_version"]


def test_ownership_modes_keep_a_persons_edits_where_configured(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, _):
        plan = wb.make_plan(store, writers(config))
        wb.apply(store, plan, writers(config))
        # Given a person edits three HubSpot records after our write: a segment, an NPS, and
        # clears another NPS
        ids = sorted({i.record_id for i in plan.items if i.crm == "hubspot"})
        a, b, c = ids[:3]
        (hubspot,) = [w for w in writers(config) if w.crm == "hubspot"]
        with hubspot:
            edits = [(a, {"segment": "stable"}), (b, {"nps": 12.0}),
                     (c, {"nps": None})]  # fmt: skip
            assert all(r.ok for r in hubspot.write(edits))
            current = hubspot.read([a, b, c])
        # when planning with the default (overwrite), every edit is planned back
        everything = wb.make_plan(store, writers(config))
        planned = {(i.record_id, i.field) for i in everything.items if i.crm == "hubspot"}
        changed_a = current[a]["segment"] != next(
            i.after for i in plan.items if i.record_id == a and i.field == "segment"
        )
        assert {(b, "nps"), (c, "nps")} <= planned
        assert ((a, "segment") in planned) == changed_a
        # and with segment skip_if_edited and nps fill_if_empty, only the cleared NPS is
        rules = wb.Governance(ownership={"segment": "skip_if_edited", "nps": "fill_if_empty"})
        kept = wb.make_plan(store, writers(config), rules)
        planned = {(i.record_id, i.field) for i in kept.items if i.crm == "hubspot"}
        assert (c, "nps") in planned
        assert (b, "nps") not in planned and (a, "segment") not in planned
    # and an unknown field or mode is refused, naming the setting
    with pytest.raises(ValueError, match=r"writeback\.ownership\.colour"):
        wb.Governance.from_settings({"ownership": {"colour": "overwrite"}})
    with pytest.raises(ValueError, match=r"writeback\.ownership\.band: must be one of"):
        wb.Governance.from_settings({"ownership": {"band": "sometimes"}})


def test_a_crm_outage_fails_its_records_as_retriable_and_the_next_run_writes_them(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, _):
        # Given HubSpot answers every batch update with 503 (the others are fine)
        method, path = WRITE_ROUTES["hubspot"]
        sandbox.ctx.faults.add(Fault("server_error", vendor="hubspot", method=method, path=path))
        fast = {"retry": RetryPolicy(max_tries=2, base=0.01, cap=0.01)}
        # when a plan is applied
        plan = wb.make_plan(store, writers(config, **fast))
        report = wb.apply(store, plan, writers(config, **fast))
        # then HubSpot's records are reported failed by id, retriable, and the others applied
        hubspot = {i.record_id for i in plan.items if i.crm == "hubspot"}
        assert {rid for crm, rid, _ in report.failed if crm == "hubspot"} == hubspot
        assert report.applied == plan.counts()["records"] - len(hubspot)
        states = dict(store.query(
            "SELECT state, COUNT(*) FROM wb_items WHERE plan_id = {p} AND crm = 'hubspot'"
            " GROUP BY state", (plan.plan_id,),
        ))  # fmt: skip
        assert set(states) == {"failed"}
        # and once HubSpot is back, the next run plans and writes exactly those records
        sandbox.ctx.faults.clear()
        retry = wb.make_plan(store, writers(config))
        assert {i.record_id for i in retry.items} == hubspot
        assert not wb.apply(store, retry, writers(config)).failed
        _assert_crms_hold_the_scores(store, config)


def test_a_write_back_run_logs_a_line_per_crm_not_one_per_request_or_record(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path, size=40) as (_, store, config, messages):
        # Given write-back on (Intercom takes one company per call)
        target = {"database_url": f"sqlite:///{tmp_path / 'health.sqlite'}", "as_of": AS_OF}
        (tmp_path / "wb.json").write_text(json.dumps(target | config | {"writeback": {
            "enabled": True}}))  # fmt: skip
        # when the target runs at its default log level
        done = subprocess.run(
            [sys.executable, "-m", "target_health.target", "--config", str(tmp_path / "wb.json")],
            input="".join(json.dumps(m) + "\n" for m in messages),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stderr.splitlines()
        # then no line per HTTP request, and one line per CRM for its writes, with the calls
        assert not [line for line in lines if "HTTP Request" in line]
        wrote = [line for line in lines if ": wrote " in line]
        assert sorted(line.split("| ")[-1].split(":")[0] for line in wrote) == sorted(
            {"hubspot", "salesforce", "intercom"}
        ), wrote
        intercom = next(line for line in wrote if "| intercom:" in line)
        calls = int(intercom.split(" in ")[1].split()[0])
        assert calls > 1, intercom  # many calls, one line
    store.close()


def test_rejected_credentials_stop_write_back_not_the_run_and_it_exits_1(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path, size=20) as (_, store, config, messages):
        # Given write-back on with a HubSpot token the CRM rejects
        bad = config | {"hubspot_access_token": "pat-revoked-token", "writeback": {"enabled": True}}
        (tmp_path / "again").mkdir()
        target = {"database_url": f"sqlite:///{tmp_path / 'health.sqlite'}", "as_of": AS_OF}
        (tmp_path / "again" / "cfg.json").write_text(json.dumps(target | bad))
        # when the target runs
        done = subprocess.run(
            [sys.executable, "-m", "target_health.target", "--config",
             str(tmp_path / "again" / "cfg.json")],
            input="".join(json.dumps(m) + "\n" for m in messages),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        # then the run stores and measures, and exits 1 (a scheduler sees it) with one line
        # saying why write-back stopped, naming the setting, never the token
        assert done.returncode == 1, done.stderr[-3000:]
        last = done.stderr.strip().splitlines()[-1]
        assert "target-health: write-back: hubspot" in last and "hubspot_access_token" in last
        assert "pat-revoked-token" not in done.stderr and "Traceback" not in done.stderr
        (status, counts) = store.query(
            "SELECT status, counts FROM runs ORDER BY finished_at DESC LIMIT 1"
        )[0]
        assert status == "succeeded" and "error" in json.loads(counts)["writeback"]
        assert json.loads(counts)["measured"]["accounts"] > 0


def test_the_target_starts_retention_programs_once_per_transition(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, messages):
        on = config | {"writeback": {"enabled": True, "max_band_change_share": 1.0}}
        # Given a snapshot a month earlier, written back
        _target(tmp_path, messages, as_of="2026-10-01", **on)
        # when the target measures as of now, with write-back on, twice
        _target(tmp_path, messages, **on)
        _target(tmp_path, messages, **on)
        runs = [
            json.loads(c) for (c,) in store.query("SELECT counts FROM runs ORDER BY finished_at")
        ]
        first, second = runs[-2]["writeback"], runs[-1]["writeback"]
        # then the accounts that moved into at_risk/critical got one follow-up each, once
        moved = store.query(
            "SELECT COUNT(*) FROM scores n JOIN scores o ON o.account_key = n.account_key"
            " AND o.model_version = n.model_version AND o.as_of = '2026-10-01'"
            " WHERE n.as_of = {p} AND n.band IN ('at_risk', 'critical')"
            " AND o.band NOT IN ('at_risk', 'critical')",
            (AS_OF,),
        )[0][0]
        assert moved > 0 and first["programs"]["transitions"] == moved
        assert first["programs"]["created"] >= moved and not first["programs"]["failed"]
        assert second["programs"]["created"] == 0


def test_rollback_undoes_the_run_fields_and_followups(make_sandbox: Any, tmp_path: Path) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, messages):
        on = config | {"writeback": {"enabled": True, "max_band_change_share": 1.0}}
        # Given a month-old snapshot written back, then a run whose transitions made follow-ups
        _target(tmp_path, messages, as_of="2026-10-01", **on)
        _target(tmp_path, messages, **on)
        (plan_id,) = store.query(
            "SELECT plan_id FROM wb_plans WHERE kind = 'apply' AND as_of = {p}"
            " ORDER BY created_at DESC LIMIT 1",
            (AS_OF,),
        )[0]
        made = store.query(
            "SELECT crm, record_id, marker FROM wb_programs"
            " WHERE as_of = {p} AND state = 'created'",
            (AS_OF,),
        )
        assert made
        # when that plan is rolled back from the command line
        cmd = [sys.executable, "-m", "target_health.target", "rollback", plan_id, "--config",
               str(tmp_path / "target.json"), "--json"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout)
        # then the fields are restored and every follow-up it started is gone from the CRMs
        assert out["restored"] > 0 and out["followups"]["deleted"] == len(made)
        by_crm = {w.crm: w for w in writers(config)}
        for crm, record_id, mark in made:
            with by_crm[crm] as writer:
                assert writer.find_followup(record_id, mark) is None, (crm, record_id)
        # and a second rollback finds nothing left to undo
        again = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        assert again["restored"] == 0 and again["followups"]["deleted"] == 0
        # and an unknown plan is one line and exit 2
        bad = subprocess.run([*cmd[:4], "no-such-plan", *cmd[5:]], capture_output=True,
                             text=True, check=False)  # fmt: skip
        assert bad.returncode == 2 and bad.stderr.strip() == (
            "target-health rollback: no write-back plan 'no-such-plan'"
        )


def test_rollback_of_a_model_walks_its_plans_back_to_the_values_before_it(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (_, store, config, messages):
        on = config | {"writeback": {"enabled": True, "max_band_change_share": 1.0}}
        # Given the default model's scores of a month-old snapshot written back
        _target(tmp_path, messages, as_of="2026-10-01", **on)
        _, _, want = wb.desired(store)
        ids: dict[str, list[str]] = {}
        for crm, rid in want:
            ids.setdefault(crm, []).append(rid)
        before = crm_values(config, ids)
        good_followups = store.query("SELECT COUNT(*) FROM wb_programs WHERE state = 'created'")
        # and then a bad model, written back on two later snapshots (two plans of it)
        bad = {"health": {"signals": {"nps": {"weight": 60}}, "version": "bad-model"}}
        _target(tmp_path, messages, as_of="2026-10-15", scoring=bad, **on)
        _target(tmp_path, messages, scoring=bad, **on)
        applied = store.query(
            "SELECT plan_id FROM wb_plans WHERE model_version = 'bad-model' AND kind = 'apply'"
            " ORDER BY created_at DESC"
        )
        assert len(applied) == 2 and crm_values(config, ids) != before
        # when the model is rolled back from the command line
        cmd = [sys.executable, "-m", "target_health.target", "rollback", "--model-version",
               "bad-model", "--config", str(tmp_path / "target.json"), "--json"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout)
        # then both its plans were undone (listed newest first), and every field holds what it
        # held before the model's first plan, with no conflict, in one write per field
        assert out["of"] == [p for (p,) in applied] and out["restored"] > 0
        assert out["conflicts"] == [] and out["failed"] == []
        assert crm_values(config, ids) == before
        # and the follow-ups the bad model started are deleted, the earlier ones kept
        assert store.query(
            "SELECT COUNT(*) FROM wb_programs WHERE state = 'created'"
            " AND model_version = 'bad-model'"
        ) == [(0,)]
        assert (
            store.query("SELECT COUNT(*) FROM wb_programs WHERE state = 'created'")
            == good_followups
        )
        # and a second rollback of the model changes nothing
        again = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        assert again["restored"] == 0 and again["followups"]["deleted"] == 0
        assert crm_values(config, ids) == before
        # and a model with no applied plan, or a plan id with a model, is one line and exit 2
        unknown = subprocess.run([*cmd[:5], "no-such-model", *cmd[6:]], capture_output=True,
                                 text=True, check=False)  # fmt: skip
        assert unknown.returncode == 2 and unknown.stderr.strip() == (
            "target-health rollback: no applied write-back plan of model 'no-such-model'"
        )
        both = subprocess.run([*cmd[:4], "some-plan", *cmd[4:]], capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert both.returncode == 2 and both.stderr.strip() == (
            "target-health rollback: give a plan id or --model-version, one of them"
        )


def test_the_brake_holds_a_plan_that_shifts_the_score_distribution(
    make_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline(make_sandbox, tmp_path) as (sandbox, store, config, messages):
        wb.apply(store, wb.make_plan(store, writers(config)), writers(config))
        # Given a model that weighs NPS and CSAT much more: the scores move, bands barely matter
        signals = {"nps": {"weight": 60}, "csat": {"weight": 60}}
        _target(tmp_path, messages, scoring={"health": {"signals": signals, "version": "vocal"}})
        _count_writes(sandbox)
        # when planned with the band brake off and a 1-point limit on the mean score's move
        rules = wb.Governance(max_band_change_share=1.0, min_accounts=5, max_mean_score_shift=1.0)
        plan = wb.make_plan(store, writers(config), rules)
        wb.apply(store, plan, writers(config))
        # then the plan is held and nothing is written
        assert plan.status == "held" and "the mean score would move" in plan.reason
        assert not any(_writes(sandbox).values())
        # while with the default limit (15 points) the same change goes through
        assert (
            wb.make_plan(store, writers(config), wb.Governance(max_band_change_share=1.0)).status
            == "planned"
        )
