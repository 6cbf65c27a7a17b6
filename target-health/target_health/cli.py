"""``target-health`` commands beside the Singer target. They read the same config file as the
target (``--config``): its ``database_url`` and, for write-back, the CRM credentials (the same
settings as tap-crm's).

``target-health setup``: create the owned fields in each CRM (idempotent), or list exactly
which to create by hand where permissions lack.
``target-health plan``: what write-back would change in each CRM (saved, nothing written).
``target-health apply``: plan, then write the changes (journaled before each write).
``target-health rollback PLAN_ID``: restore a plan's before-values; conflicts are reported.
``target-health approve|reject PLAN_ID``: decide on changes held by the brake or the gate.
``target-health runs``: the write-back plans with their counts and status.

``target-health backtest``: how well the stored bands separated the accounts that later churned.
For each account, its latest snapshot on or before ``--snapshot`` (default: the latest snapshot
date minus the horizon) is a case; it churned if its churn date falls within
``--horizon-days`` after the snapshot. Printed: per band, precision and recall of "this band or
worse" as a churn predictor, and the score's AUC (Mann-Whitney, ties averaged).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from . import exits
from .runlock import StoreBusy, exclusive, wait_seconds
from .scoring import backtest, cases_at
from .scoring.model import DEFAULT_MODEL
from .store import DEFAULT_URL, Store, open_store

COMMANDS = ("backtest", "setup", "plan", "apply", "rollback", "approve", "reject", "runs")


class UsageError(Exception):
    """A wrong argument or config file: one line, exit 2."""


def _config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UsageError(f"--config {path}: not a JSON file ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise UsageError(f"--config {path}: not a JSON object")
    return config


def backtest_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="target-health backtest", description=__doc__)
    parser.add_argument("--config", help="the target's config file (for database_url)")
    parser.add_argument("--snapshot", type=dt.date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--model-version", help="default: the latest snapshot's model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    store = open_store(str(_config(args.config).get("database_url") or DEFAULT_URL))
    latest = store.query(
        "SELECT model_version, as_of FROM scores ORDER BY as_of DESC, model_version LIMIT 1"
    )
    if not latest:
        print("target-health backtest: no scores stored yet", file=sys.stderr)
        return 2
    version = args.model_version or str(latest[0][0])
    snapshot = args.snapshot or (
        dt.date.fromisoformat(str(latest[0][1])) - dt.timedelta(days=args.horizon_days)
    )
    history: dict[str, list[tuple[dt.date, float | None, str | None]]] = {}
    churned: dict[str, dt.date | None] = {}
    for key, as_of, score, band, churned_on in store.stream(
        "SELECT account_key, as_of, score, band, churned_on FROM scores"
        " WHERE model_version = {p} ORDER BY account_key, as_of",
        (version,),
    ):
        history.setdefault(key, []).append((dt.date.fromisoformat(as_of), score, band))
        if churned_on:
            churned[key] = dt.date.fromisoformat(churned_on)
    cases = cases_at(history, churned, snapshot, args.horizon_days)
    if not cases:
        print(
            f"target-health backtest: no account of model {version} was scored on or before"
            f" {snapshot}; measure for longer, or pass --snapshot",
            file=sys.stderr,
        )
        return 2
    bands = [b["name"] for b in DEFAULT_MODEL["bands"]]
    seen = {c.band for c in cases}
    bands = [b for b in bands if b in seen] + sorted(seen - set(bands))
    result = backtest(cases, bands)
    if args.json:
        out = {"model_version": version, "snapshot": str(snapshot),
               "horizon_days": args.horizon_days, **asdict(result)}  # fmt: skip
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"model {version}, snapshot {snapshot}, horizon {args.horizon_days} days:"
        f" {result.cases} accounts, {result.churned} churned; AUC {result.auc}"
    )
    print(f"{'band':<10}{'accounts':>9}{'churned':>9}{'precision*':>12}{'recall*':>9}")
    for b in result.bands:
        print(
            f"{b.band:<10}{b.accounts:>9}{b.churned:>9}"
            f"{_pct(b.precision_at_or_worse):>12}{_pct(b.recall_at_or_worse):>9}"
        )
    print("* of the predictor 'this band or worse'")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def writeback_command(command: str, argv: list[str]) -> int:
    from .writeback import plan as wb
    from .writeback.crm import writers

    parser = argparse.ArgumentParser(prog=f"target-health {command}")
    parser.add_argument("--config", help="the target's config file")
    if command in ("rollback", "approve", "reject"):
        parser.add_argument("plan_id")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    config = _config(args.config)
    store = open_store(str(config.get("database_url") or DEFAULT_URL))
    wb.ensure_tables(store)
    out: dict[str, Any]
    if command == "setup":
        reports = []
        for writer in writers(config):
            try:
                r = writer.ensure_fields()
            finally:
                writer.close()
            reports.append({"crm": r.crm, "created": r.created, "existing": r.existing,
                            "missing": r.missing, "message": r.message})  # fmt: skip
        out = {"setup": reports}
        print(json.dumps(out, indent=2) if args.json else _text(out))
        return exits.OK if all(not r["missing"] for r in reports) else exits.ATTENTION
    if command == "runs":
        rows = store.query(
            "SELECT plan_id, created_at, kind, status, counts FROM wb_plans ORDER BY created_at"
        )
        out = {"plans": [
            {"plan_id": p, "created_at": c, "kind": k, "status": s, **json.loads(n)}
            for p, c, k, s, n in rows
        ]}  # fmt: skip
    else:
        try:
            out = _writing_command(command, args, config, store)
        except StoreBusy as exc:
            print(f"target-health {command}: {exc}", file=sys.stderr)
            return exits.FAILED
        except KeyError as exc:  # an unknown plan id
            print(f"target-health {command}: {exc.args[0]}", file=sys.stderr)
            return exits.USAGE
    print(json.dumps(out, indent=2, default=str) if args.json else _text(out))
    # a CRM error or failed records (kept for the next run): 1; held by the brake or the gate: 3
    return exits.of_writeback(out, config)


def _writing_command(
    command: str, args: argparse.Namespace, config: Mapping[str, Any], store: Store
) -> dict[str, Any]:
    """The commands that write to the CRMs, each holding the store's write-back lock."""
    from .writeback import plan as wb
    from .writeback.crm import writers
    from .writeback.run import roll_back, write_back

    if command in ("plan", "apply"):
        rules = wb.Governance.from_settings(config.get("writeback"))
        return write_back(store, config, rules, dry_run=command == "plan",
                          label=f"target-health {command}")  # fmt: skip
    with exclusive(store, f"target-health {command} {args.plan_id}", wait_seconds(config)):
        if command == "rollback":
            return roll_back(store, config, args.plan_id)
        decided = wb.decide(store, args.plan_id, command == "approve", writers(config))
        return {"plan_id": args.plan_id, command + "d": True, "calls": decided.calls,
                "applied": decided.applied, "failed": decided.failed}  # fmt: skip


def _text(out: Mapping[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in out.items())


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    try:
        if command == "backtest":
            return backtest_command(rest)
        return writeback_command(command, rest)
    except UsageError as exc:
        print(f"target-health {command}: {exc}", file=sys.stderr)
        return exits.USAGE
