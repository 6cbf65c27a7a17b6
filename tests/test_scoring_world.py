"""The default model on the sandbox's deterministic world: known at-risk accounts land in the
at-risk bands, healthy ones do not, and the order holds when whole sources of data are missing.

The world's generator labels each account (healthy, declining, at_risk, churned) and draws its
signals to match; the model reads only the facts (AccountFacts has no label). As of the world's
anchor, 2026-11-01, with WorldSpec(size=1500, seed=3) the default model gave (rows: label,
columns: band; printed by the first test, run with -s):

    label       healthy  neutral  at_risk  critical
    healthy         935        0        0         0
    declining        42      212       18         0
    at_risk           0        0       60       122
    churned           0        0       25        86

The tests assert thresholds, not these exact counts, so that a change to the generator's draws
does not fail them while the model still separates the labels.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

import pytest
from scoringkit import WORLD_AS_OF, confusion, world

from target_health.scoring.backtest import Case, auc, backtest
from target_health.scoring.facts import AccountFacts
from target_health.scoring.health import HealthScore, score_account
from target_health.scoring.model import parse_model
from target_health.scoring.segments import segment_of

MODEL = parse_model({})
RISKY = ("at_risk", "critical")

Scored = Sequence[tuple[str, AccountFacts, HealthScore]]


@pytest.fixture(scope="module")
def scored() -> Scored:
    return [(label, f, score_account(f, WORLD_AS_OF, MODEL)) for label, f in world(1500, 3)]


def share(rows: Scored, label: str, bands: Sequence[str]) -> float:
    of_label = [r for lab, _, r in rows if lab == label]
    return sum(1 for r in of_label if r.band in bands) / len(of_label)


def test_given_world_when_scoring_then_at_risk_accounts_land_in_at_risk_bands(scored: Scored):
    # Given the world's 1,500 accounts scored with the default model as of its anchor
    matrix = confusion((label, r.band) for label, _, r in scored)
    print("confusion (label -> band):", matrix)
    # then at least 95% of the at-risk accounts are in at_risk/critical, at most 2% of the
    # healthy ones (the module docstring has the matrix: 100% and 0%)
    assert sum(matrix["at_risk"].values()) > 100 and sum(matrix["healthy"].values()) > 500
    assert share(scored, "at_risk", RISKY) >= 0.95
    assert share(scored, "healthy", RISKY) <= 0.02
    assert share(scored, "healthy", ("healthy",)) >= 0.95
    assert share(scored, "churned", RISKY) >= 0.9
    # and declining accounts sit in between: mostly neutral, by median score between the two
    assert share(scored, "declining", ("neutral",)) >= 0.6
    median = {
        lab: statistics.median(r.score for la, _, r in scored if la == lab and r.score is not None)
        for lab in ("healthy", "declining", "at_risk")
    }
    assert median["healthy"] > median["declining"] > median["at_risk"]
    # and every account was scored (no coverage shortfall in a world with usage for all)
    assert all(r.score is not None for _, _, r in scored)


def test_given_at_risk_accounts_when_explaining_then_usage_is_among_their_top_factors(
    scored: Scored,
):
    # Given the at-risk accounts: their usage falls and their seats go unused (by construction)
    at_risk = [r for label, _, r in scored if label == "at_risk"]
    # then every one names seat utilisation or usage trend among its 3 most negative factors
    usage = {"seat_utilisation", "usage_trend"}
    assert all(usage & {f.signal for f in r.factors} for r in at_risk)
    # and every factor is negative, worst first, with a text for a person
    for r in at_risk:
        assert [f.contribution for f in r.factors] == sorted(f.contribution for f in r.factors)
        assert all(f.contribution < 0 and f.text for f in r.factors)


def test_given_world_when_backtesting_at_risk_labels_then_bands_separate_them(scored: Scored):
    # Given the live accounts (churned ones are gone), with "at_risk" label as the outcome
    cases = [
        Case(r.account_key, r.score, r.band, label == "at_risk")
        for label, _, r in scored
        if label != "churned" and r.score is not None and r.band is not None
    ]
    result = backtest(cases, MODEL.band_names)
    by_band = {m.band: m for m in result.bands}
    # then "at_risk or worse" finds every at-risk account, and at least 9 in 10 it flags are
    # at risk (the rest are declining accounts)
    assert by_band["at_risk"].recall_at_or_worse == 1.0
    precision = by_band["at_risk"].precision_at_or_worse
    assert precision is not None and precision >= 0.9
    assert by_band["healthy"].churned == 0
    # and the score alone ranks them almost perfectly
    assert result.auc is not None and result.auc >= 0.99


@pytest.mark.parametrize(
    "without",
    [
        {"tickets": (), "nps": (), "last_engagement": None},  # no support or survey data
        {"usage": ()},  # no product-usage source
    ],
    ids=["crm-fields-and-usage-only", "no-usage"],
)
def test_given_missing_sources_when_scoring_world_then_reweighting_keeps_the_order(
    scored: Scored, without: dict[str, object]
):
    # Given the world's healthy and at-risk accounts with a whole source of data missing
    cases = []
    for label, facts, _ in scored:
        if label in ("healthy", "at_risk"):
            r = score_account(dataclasses.replace(facts, **without), WORLD_AS_OF, MODEL)
            assert r.score is not None and r.band is not None
            cases.append(Case(r.account_key, r.score, r.band, label == "at_risk"))
    # when the missing signals are skipped and the rest re-weighted, then the score still
    # ranks at-risk accounts below healthy ones
    got = auc(cases)
    assert got is not None and got >= 0.98


def test_given_world_when_segmenting_then_churned_and_at_risk_accounts_are_flagged(
    scored: Scored,
):
    # Given the world's accounts and their scores, when the default segment rules run
    segments = [(label, segment_of(f, r, model=MODEL).name) for label, f, r in scored]
    # then exactly the churned accounts are in "churned"
    assert all((label == "churned") == (seg == "churned") for label, seg in segments)
    # and every at-risk account is in churn_risk or at_risk, no healthy one is
    assert all(seg in ("churn_risk", "at_risk") for label, seg in segments if label == "at_risk")
    assert not any(
        seg in ("churn_risk", "at_risk") for label, seg in segments if label == "healthy"
    )
