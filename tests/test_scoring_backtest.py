"""Backtest metrics on a worked example computed by hand (SCORING.md, "Backtest"): precision
and recall per band and per "band or worse", and the AUC of the score with tied scores counted
by the Mann-Whitney average-rank rule."""

from __future__ import annotations

import datetime as dt

import pytest

from target_health.scoring.backtest import Case, auc, average_ranks, backtest, cases_at

BANDS = ("healthy", "neutral", "at_risk", "critical")

#: Ten accounts at a snapshot: score, band, churned within the horizon after it.
CASES = (
    Case("a", 85, "healthy", False),
    Case("b", 72, "healthy", True),
    Case("c", 72, "healthy", False),  # tied with b, which churned
    Case("d", 60, "neutral", False),
    Case("e", 55, "neutral", False),
    Case("f", 45, "at_risk", True),
    Case("g", 45, "at_risk", False),  # tied with f, which churned
    Case("h", 35, "at_risk", True),
    Case("i", 20, "critical", True),
    Case("j", 10, "critical", False),
)


def test_given_worked_example_when_backtesting_then_precision_and_recall_per_band():
    # When the ten cases are backtested (4 churned: b, f, h, i)
    result = backtest(CASES, BANDS)
    assert (result.cases, result.churned, result.churn_rate) == (10, 4, 0.4)
    got = {
        m.band: (
            m.accounts,
            m.churned,
            m.precision,
            m.recall,
            m.precision_at_or_worse,
            m.recall_at_or_worse,
        )
        for m in result.bands
    }
    # then per band, "band is B": precision = churned in B / in B, recall = churned in B / 4;
    # "B or worse": healthy..critical = all 10 (4 churned), neutral.. = 7 (f h i: 3),
    # at_risk.. = 5 (3), critical = 2 (1)
    assert got == {
        "healthy": (3, 1, 0.3333, 0.25, 0.4, 1.0),  # 1/3; 1/4 | 4/10; 4/4
        "neutral": (2, 0, 0.0, 0.0, 0.4286, 0.75),  # 0/2; 0/4 | 3/7; 3/4
        "at_risk": (3, 2, 0.6667, 0.5, 0.6, 0.75),  # 2/3; 2/4 | 3/5; 3/4
        "critical": (2, 1, 0.5, 0.25, 0.5, 0.25),  # 1/2; 1/4 | 1/2; 1/4
    }


def test_given_worked_example_when_computing_auc_then_ties_count_one_half():
    # Given the ten cases: pairs (churned, retained) where the retained account scored higher
    #   b 72: above it 85; tied 72 (c) -> 1 + 0.5          = 1.5
    #   f 45: above 85, 72, 60, 55; tied 45 (g) -> 4 + 0.5 = 4.5
    #   h 35: above 85, 72, 60, 55, 45                     = 5
    #   i 20: above 85, 72, 60, 55, 45                     = 5
    #   U = 16 of 4 x 6 = 24 pairs -> AUC = 0.6667
    assert auc(CASES) == 0.6667
    # and the same by average ranks: ascending 10:1 20:2 35:3 45:4.5,4.5 55:6 60:7 72:8.5,8.5 85:10;
    # retained ranks 1 + 4.5 + 6 + 7 + 8.5 + 10 = 37; U = 37 - 6 x 7 / 2 = 16
    ranks = average_ranks([c.score for c in CASES])
    assert ranks == [10, 8.5, 8.5, 7, 6, 4.5, 4.5, 3, 2, 1]
    assert sum(r for r, c in zip(ranks, CASES, strict=True) if not c.churned) == 37
    # and the metric is about order only: any churned scoring below every retained gives 1.0,
    # all scores equal give 0.5
    assert auc([Case("x", 10, "critical", True), Case("y", 90, "healthy", False)]) == 1.0
    assert auc([Case("x", 50, "neutral", True), Case("y", 50, "neutral", False)]) == 0.5


def test_given_undefined_ratios_when_backtesting_then_none_not_zero():
    # Given only retained accounts, all healthy
    result = backtest([Case("a", 90, "healthy", False), Case("b", 80, "healthy", False)], BANDS)
    # then AUC and every recall are undefined, and empty bands have no precision
    assert result.auc is None
    assert all(m.recall is None for m in result.bands)
    assert [m.precision for m in result.bands] == [0.0, None, None, None]
    # and a band the model does not know is refused
    with pytest.raises(ValueError, match="not among"):
        backtest([Case("a", 10, "doomed", True)], BANDS)


def test_given_score_history_when_building_cases_then_latest_snapshot_and_horizon_rule():
    day = dt.date.fromisoformat
    history = {
        # latest snapshot on or before 2026-06-01 is 2026-05-20 (the 06-15 one is later)
        "a": [
            (day("2026-05-01"), 70.0, "healthy"),
            (day("2026-05-20"), 40.0, "at_risk"),
            (day("2026-06-15"), 10.0, "critical"),
        ],
        "b": [(day("2026-05-31"), 25.0, "critical")],  # churns on the horizon's last day
        "c": [(day("2026-05-31"), 65.0, "neutral")],  # churns one day after the horizon
        "d": [(day("2026-04-01"), 30.0, "at_risk")],  # churned before the snapshot: left out
        "e": [(day("2026-06-02"), 80.0, "healthy")],  # no snapshot by 2026-06-01: left out
        "f": [(day("2026-05-01"), None, None)],  # never scored: left out
    }
    churned_on = {
        "a": None,
        "b": day("2026-08-30"),
        "c": day("2026-08-31"),
        "d": day("2026-05-15"),
    }
    # when cases are built at 2026-06-01 with a 90-day horizon (churn in (06-01, 08-30])
    cases = cases_at(history, churned_on, day("2026-06-01"), horizon_days=90)
    # then
    assert cases == [
        Case("a", 40.0, "at_risk", False),
        Case("b", 25.0, "critical", True),
        Case("c", 65.0, "neutral", False),
    ]
