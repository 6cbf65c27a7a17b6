"""Every run's measurements: per-account health, segment and NPS, and the portfolio's NPS,
retention and band distribution, written to the store's ``scores`` and ``metrics`` tables.

Facts are streamed from the store one account at a time (assemble.py) and taken a batch at a
time: the batch's earlier snapshots are looked up by key, its scores written, and the portfolio
figures accumulated (NPS as counts, retention as per-period tallies of each account's ARR at the
period's start and end), so memory stays flat however many accounts there are. Scores are keyed
by (account, as-of date, model version), so a rerun on the same day with the same input writes
the same rows, and a new model version starts its own history. The trend compares with that
model's earlier snapshots.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

from .assemble import AssemblyStats, account_facts
from .scoring import (
    HealthScore,
    ScoringSettings,
    account_nps,
    arr_timeline,
    periods,
    score_account,
    segment_of,
)
from .scoring.facts import AccountFacts
from .scoring.nps import NpsPool
from .scoring.retention import RetentionTally
from .store import Store

log = logging.getLogger(__name__)

BATCH = 2000


@dataclass
class ComputeSummary:
    as_of: dt.date
    model_version: str
    accounts: int = 0
    scored: int = 0
    bands: Counter[str] = field(default_factory=Counter)
    segments: Counter[str] = field(default_factory=Counter)
    nps: dict[str, Any] = field(default_factory=dict)
    retention: list[dict[str, Any]] = field(default_factory=list)
    assembly: AssemblyStats = field(default_factory=AssemblyStats)


def _factor(f: Any) -> dict[str, Any]:
    return {"signal": f.signal, "contribution": f.contribution, "text": f.text}


def _score_row(
    health: HealthScore, segment: str, nps: Any, churned_on: dt.date | None
) -> tuple[Any, ...]:
    detail = {
        "coverage": health.coverage,
        "used": list(health.used),
        "missing": list(health.missing),
        "imputed": list(health.imputed),
        "strengths": [_factor(f) for f in health.strengths],
        "trend": {
            "previous_date": str(health.trend.previous_date)
            if health.trend.previous_date
            else None,
            "delta_previous": health.trend.delta_previous,
            "window_days": health.trend.window_days,
            "delta_window": health.trend.delta_window,
            "direction": health.trend.direction,
        },
        "nps": asdict(nps),
    }
    return (
        health.account_key,
        str(health.as_of),
        health.model_version,
        health.score,
        health.band,
        segment,
        health.trend.delta_window
        if health.trend.delta_window is not None
        else health.trend.delta_previous,
        nps.nps,
        nps.responses,
        str(churned_on) if churned_on else None,
        [_factor(f) for f in health.factors],
        detail,
    )


def _batches(facts: Iterable[AccountFacts], size: int) -> Iterator[list[AccountFacts]]:
    it = iter(facts)
    while batch := list(islice(it, size)):
        yield batch


def compute(store: Store, settings: ScoringSettings, as_of: dt.date) -> ComputeSummary:
    """Score every account as of ``as_of`` and store the results; returns what was measured."""
    model = settings.health
    summary = ComputeSummary(as_of, model.version)
    pool = NpsPool()
    tallies = [RetentionTally(p) for p in periods(settings.retention_periods, as_of)]
    for batch in _batches(account_facts(store, summary.assembly), BATCH):
        history = store.score_history(model.version, str(as_of), [f.account_key for f in batch])
        rows: list[tuple[Any, ...]] = []
        for facts in batch:
            summary.accounts += 1
            snaps = [
                (dt.date.fromisoformat(d), s) for d, s, _ in history.get(facts.account_key, ())
            ]
            health = score_account(facts, as_of, model, snaps)
            segment = segment_of(facts, health, settings.segments, model, settings.nps_window_days)
            nps = account_nps(facts, as_of, settings.nps_window_days)
            pool.add(nps)
            timeline = arr_timeline(facts)
            for tally in tallies:
                tally.add(timeline)
            if health.score is not None:
                summary.scored += 1
            summary.bands[health.band or "unscored"] += 1
            summary.segments[segment.name] += 1
            rows.append(_score_row(health, segment.name, nps, facts.churned_on))
        store.write_scores(rows)
    summary.nps = asdict(pool.result())
    metrics: list[tuple[str, str, str, str, Any]] = [
        (str(as_of), "nps", f"{settings.nps_window_days} days", model.version, summary.nps),
        (str(as_of), "bands", "accounts", model.version, dict(sorted(summary.bands.items()))),
        (str(as_of), "segments", "accounts", model.version, dict(sorted(summary.segments.items()))),
    ]
    for tally in tallies:
        period, result = tally.period, tally.result()
        figures = {
            "version": result.version,
            "start": str(period.start),
            "end": str(period.end),
            "grr": result.grr,
            "nrr": result.nrr,
            "logo_retention": result.logo_retention,
            "cohort_logos": result.cohort_logos,
            "start_arr": result.start_arr,
            "end_arr": result.end_arr,
            "churned_arr": result.churned_arr,
            "contraction_arr": result.contraction_arr,
            "expansion_arr": result.expansion_arr,
            "new_logos": result.new_logos,
            "reactivated_logos": result.reactivated_logos,
        }
        summary.retention.append({"period": period.label, **figures})
        metrics.append((str(as_of), "retention", period.label, model.version, figures))
    store.write_metrics(metrics)
    return summary
