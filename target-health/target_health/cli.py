"""``target-health`` commands beside the Singer target: ``backtest`` (and, with write-back,
more). They read the same config file as the target (``--config``), for its ``database_url``.

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
from dataclasses import asdict
from typing import Any

from .scoring import backtest, cases_at
from .scoring.model import DEFAULT_MODEL
from .store import DEFAULT_URL, open_store

COMMANDS = ("backtest",)


def _config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)
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


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    if command == "backtest":
        return backtest_command(rest)
    raise AssertionError(command)
