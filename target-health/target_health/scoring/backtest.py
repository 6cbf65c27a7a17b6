"""How well past scores separated the accounts that later churned.

Each case is one account's score and band at a snapshot date and whether it churned within the
horizon after it. Per band, two churn predictors are measured:

- "band is B": precision = churned in B / accounts in B (the band's churn rate),
  recall = churned in B / all churned;
- "band is B or worse" (bands ordered best first): the same over B and every band below it.

AUC is the probability that a churned account scored lower than a retained one (lower score =
higher risk), ties counting one half: the Mann-Whitney U over average ranks, divided by
(churned x retained). Undefined values (no account in a band, no churned or no retained
account) are ``None``. Ratios are rounded to 4 decimals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Case:
    account_key: str
    score: float
    band: str
    churned: bool  # churned within the horizon after the snapshot


@dataclass(frozen=True, slots=True)
class BandMetrics:
    band: str
    accounts: int
    churned: int
    precision: float | None  # predictor "band is B"
    recall: float | None
    accounts_at_or_worse: int
    churned_at_or_worse: int
    precision_at_or_worse: float | None  # predictor "band is B or worse"
    recall_at_or_worse: float | None


@dataclass(frozen=True, slots=True)
class Backtest:
    cases: int
    churned: int
    churn_rate: float | None
    bands: tuple[BandMetrics, ...]  # in the order given, best first
    auc: float | None


def _ratio(a: int | float, b: int | float) -> float | None:
    return round(a / b, 4) if b else None


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` ascending; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = (i + j) / 2 + 1  # ranks i+1 .. j+1
        for k in range(i, j + 1):
            ranks[order[k]] = mean
        i = j + 1
    return ranks


def auc(cases: Sequence[Case]) -> float | None:
    """AUC of the score as a churn predictor (lower score = higher risk), Mann-Whitney."""
    ranks = average_ranks([c.score for c in cases])
    kept = [r for r, c in zip(ranks, cases, strict=True) if not c.churned]
    n_kept, n_churned = len(kept), len(cases) - len(kept)
    if not n_kept or not n_churned:
        return None
    # U counts the (retained, churned) pairs where the retained account scored higher.
    u = sum(kept) - n_kept * (n_kept + 1) / 2
    return round(u / (n_kept * n_churned), 4)


def backtest(cases: Iterable[Case], bands: Sequence[str]) -> Backtest:
    """Precision and recall per band (``bands`` best first, e.g. ``model.band_names``) and AUC."""
    items = list(cases)
    unknown = sorted({c.band for c in items} - set(bands))
    if unknown:
        raise ValueError(f"backtest: bands {unknown} are not among {list(bands)}")
    total_churned = sum(1 for c in items if c.churned)
    metrics: list[BandMetrics] = []
    for i, band in enumerate(bands):
        inside = [c for c in items if c.band == band]
        worse = set(bands[i:])
        at_or_worse = [c for c in items if c.band in worse]
        hit = sum(1 for c in inside if c.churned)
        hit_w = sum(1 for c in at_or_worse if c.churned)
        metrics.append(
            BandMetrics(
                band=band,
                accounts=len(inside),
                churned=hit,
                precision=_ratio(hit, len(inside)),
                recall=_ratio(hit, total_churned),
                accounts_at_or_worse=len(at_or_worse),
                churned_at_or_worse=hit_w,
                precision_at_or_worse=_ratio(hit_w, len(at_or_worse)),
                recall_at_or_worse=_ratio(hit_w, total_churned),
            )
        )
    return Backtest(
        len(items), total_churned, _ratio(total_churned, len(items)), tuple(metrics), auc(items)
    )


def cases_at(
    history: Mapping[str, Sequence[tuple[dt.date, float | None, str | None]]],
    churned_on: Mapping[str, dt.date | None],
    snapshot: dt.date,
    horizon_days: int,
) -> list[Case]:
    """Cases from stored (date, score, band) history: per account, its latest scored snapshot
    on or before ``snapshot``; churned when ``snapshot < churned_on <= snapshot + horizon``.
    Accounts already churned on the snapshot date, or with no scored snapshot by then, are left
    out."""
    horizon = snapshot + dt.timedelta(days=horizon_days)
    out: list[Case] = []
    for key in sorted(history):
        gone = churned_on.get(key)
        if gone is not None and gone <= snapshot:
            continue
        # For a date given twice, the last one given counts (as for the trend).
        scored = {d: (s, b) for d, s, b in history[key] if d <= snapshot and s is not None and b}
        if not scored:
            continue
        score, band = scored[max(scored)]
        assert score is not None and band is not None
        out.append(Case(key, score, band, gone is not None and gone <= horizon))
    return out
