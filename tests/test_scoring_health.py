"""Health scores pinned on hand-computed fixtures (SCORING.md): the default model on a full set
of facts, missing data (skip and re-weight, or a fixed value), band boundaries, ties among the top
factors, and the trend against earlier snapshots.

The arithmetic is written out next to each expectation so a reader can check it by hand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from target_health.scoring.facts import AccountFacts, NpsFact, TicketFact, UsageMonth
from target_health.scoring.health import score_account
from target_health.scoring.model import DEFAULT_MODEL, parse_model

AS_OF = dt.date(2026, 11, 1)
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # as_of at 00:00 UTC


def ago(days: float) -> dt.datetime:
    return T0 - dt.timedelta(days=days)


def month(m: int, year: int = 2026) -> dt.date:
    return dt.date(year, m, 1)


def fixture() -> AccountFacts:
    """An account with every signal present; each normalised value is a round number."""
    return AccountFacts(
        account_key="ACC-1",
        seats=140,
        renewal_date=AS_OF + dt.timedelta(days=120),
        payment_issue=True,
        last_engagement=ago(40),
        usage=(
            UsageMonth(month(5), 80, 140),
            UsageMonth(month(6), 80, 140),
            UsageMonth(month(7), 80, 140),
            UsageMonth(month(8), 80, 140),
            UsageMonth(month(9), 81, 140),
            UsageMonth(month(10), 49, 140),
            # November has just started: a partial month, which must not count (it would read
            # as a collapse to 0 users).
            UsageMonth(month(11), 0, 140),
        ),
        tickets=(
            TicketFact(ago(30), None, "high"),  # open, 30 days old
            TicketFact(ago(25), T0 + dt.timedelta(days=2), "medium"),  # closed after as_of: open
            TicketFact(ago(20), ago(15), "low", csat=3),
            TicketFact(ago(40), ago(35), "medium", csat=4),
            TicketFact(ago(80), ago(70), "urgent", csat=3),
            TicketFact(ago(100), ago(95), "low", csat=3),  # before the 90-day volume window
            TicketFact(ago(300), ago(200), "low", csat=1),  # before the 180-day CSAT window
            TicketFact(T0 + dt.timedelta(hours=1), None, "urgent"),  # after as_of: not yet
        ),
        nps=(
            NpsFact(9, ago(100)),
            NpsFact(5, ago(30)),
            NpsFact(8, ago(364)),  # inside the 365-day window
            NpsFact(0, ago(365)),  # exactly 365 days before: outside (window is (-365d, as_of])
            NpsFact(10, T0 + dt.timedelta(minutes=1)),  # after as_of
        ),
    )


def test_given_every_signal_when_scoring_with_defaults_then_score_factors_and_band_are_pinned():
    # Given an account with every signal, scored with the default model (weights sum to 100)
    result = score_account(fixture(), AS_OF)
    # then each raw value and its normalisation is (bad -> 0, good -> 1):
    #   usage_trend      recent (Aug..Oct) mean (80+81+49)/3 = 70 vs (May..Jul) 80: 70/80-1 = -0.125
    #                    linear -0.30 -> 0.05:  (-0.125+0.30)/0.35 = 0.5       x weight 15 = 7.5
    #   seat_utilisation October 49/140 = 0.35; linear 0.2 -> 0.8: 0.15/0.6 = 0.25 x 20 = 5.0
    #   ticket_volume    5 opened in 90 days; linear 9 -> 1: (9-5)/8 = 0.5      x  5 = 2.5
    #   open_ticket_sev. open: high 1.0 + medium 0.5 = 1.5; linear 3 -> 0: 0.5  x 10 = 5.0
    #   open_ticket_age  oldest open 30 days; linear 50 -> 10: 20/40 = 0.5      x  5 = 2.5
    #   csat             (3+4+3+3)/4 = 3.25; linear 2 -> 4.5: 1.25/2.5 = 0.5    x 10 = 5.0
    #   nps              9, 5, 8 in window: (1 promoter - 1 detractor)/3 = 0; linear -60 -> 60:
    #                    0.5                                                    x 10 = 5.0
    #   engagement       40 days ago; linear 50 -> 10: 10/40 = 0.25              x 10 = 2.5
    #   renewal          in 120 days: steps (<0, <30, <90) otherwise 1.0        x  5 = 5.0
    #   payment_issue    flagged = 1; linear 1 -> 0: 0.0                        x 10 = 0.0
    # score = 100 x 40.0 / 100 = 40.0 -> band at_risk (30 <= 40 < 50)
    values = {f.signal: (f.value, f.normalised) for f in result.contributions}
    assert values == {
        "usage_trend": (-0.125, 0.5),
        "seat_utilisation": (0.35, 0.25),
        "ticket_volume": (5.0, 0.5),
        "open_ticket_severity": (1.5, 0.5),
        "open_ticket_age": (30.0, 0.5),
        "csat": (3.25, 0.5),
        "nps": (0.0, 0.5),
        "engagement_recency": (40.0, 0.25),
        "renewal_proximity": (120.0, 1.0),
        "payment_issue": (1.0, 0.0),
    }
    assert result.score == 40.0
    assert result.band == "at_risk"
    assert result.model_version == "health-v1"
    assert result.coverage == 1.0 and not result.missing
    # and contributions are weight x (normalised - 0.5): seat_utilisation 20 x -0.25 = -5,
    # payment_issue 10 x -0.5 = -5 (a tie: broken by name, "payment..." < "seat..."),
    # engagement 10 x -0.25 = -2.5; the only strength is renewal 5 x 0.5 = +2.5;
    # 50 - 5 - 5 - 2.5 + 2.5 = 40
    assert [(f.signal, f.contribution) for f in result.factors] == [
        ("payment_issue", -5.0),
        ("seat_utilisation", -5.0),
        ("engagement_recency", -2.5),
    ]
    assert [(f.signal, f.contribution) for f in result.strengths] == [("renewal_proximity", 2.5)]
    assert 50 + sum(f.contribution for f in result.contributions) == result.score
    # and each factor says what it measured, for a person
    texts = [f.text for f in result.factors]
    assert texts == [
        "payment issue flagged",
        "active users 35% of seats (49 of 140, 2026-10)",
        "last engagement 40 days ago",
    ]


def test_given_missing_signals_when_scoring_then_they_are_skipped_and_the_rest_reweighted():
    # Given the fixture without NPS responses, CSAT ratings or a last engagement
    base = fixture()
    facts = dataclasses.replace(
        base,
        nps=(),
        last_engagement=None,
        tickets=tuple(dataclasses.replace(t, csat=None) for t in base.tickets),
    )
    # when it is scored with the defaults (all three signals: "missing": "skip")
    result = score_account(facts, AS_OF)
    # then they are listed as missing and the other 70 of 100 weight carry the score:
    #   sum of weight x normalised without csat (5.0), nps (5.0), engagement (2.5):
    #   40.0 - 12.5 = 27.5;  score = 100 x 27.5 / 70 = 39.2857... -> 39.3
    assert set(result.missing) == {"csat", "nps", "engagement_recency"}
    assert not result.imputed
    assert result.coverage == 0.7
    assert result.score == 39.3
    # and the weights are shares of 70: seat_utilisation 20/70 = 0.2857, contribution
    # 100 x 20/70 x -0.25 = -7.142857 -> -7.14, the same as payment_issue 100 x 10/70 x -0.5
    assert [(f.signal, f.weight, f.contribution) for f in result.factors] == [
        ("payment_issue", 0.1429, -7.14),
        ("seat_utilisation", 0.2857, -7.14),
    ]
    assert {f.signal for f in result.contributions}.isdisjoint(result.missing)


def test_given_fixed_value_for_missing_nps_when_scoring_then_it_counts_as_that_value():
    # Given a model where a missing NPS counts as 0.2 (others still skip)
    model = parse_model({"signals": {"nps": {"missing": 0.2}}})
    facts = dataclasses.replace(
        fixture(),
        nps=(),
        last_engagement=None,
        tickets=tuple(dataclasses.replace(t, csat=None) for t in fixture().tickets),
    )
    # when the account without NPS responses is scored
    result = score_account(facts, AS_OF, model)
    # then NPS counts with weight 10 at 0.2: (27.5 + 10 x 0.2) / 80 x 100 = 36.875 -> 36.9
    assert result.score == 36.9
    assert result.imputed == ("nps",) and "nps" in result.missing
    # and its factor says so: 100 x 10/80 x (0.2 - 0.5) = -3.75, no raw value
    nps = next(f for f in result.contributions if f.signal == "nps")
    assert (nps.value, nps.contribution, nps.imputed) == (None, -3.75, True)
    assert nps.text == "no NPS response in the last 365 days (counted as 0.20)"
    # and coverage counts only the signals read from facts: 70 of 100
    assert result.coverage == 0.7
    # and a changed model without its own version gets a fingerprinted one
    assert result.model_version.startswith("health-v1+") and len(result.model_version) == 18


def test_given_too_little_data_when_scoring_then_no_score_rather_than_a_guess():
    # Given an account with tickets only (ticket signals weigh 5 + 10 + 5 = 20 of 100)
    facts = AccountFacts("ACC-2", tickets=(TicketFact(ago(3), None, "low"),))
    # when scored with the default min_coverage 0.25
    result = score_account(facts, AS_OF)
    # then there is no score, no band and no factors; the coverage says why
    assert (result.score, result.band, result.factors) == (None, None, ())
    assert result.coverage == 0.2
    # and with min_coverage 0.2 the same facts are scored: three ticket signals,
    # volume 1 ticket -> 1.0, severity 0.25 -> (3-0.25)/3 = 0.9167, age 3 days -> 1.0:
    # (5 x 1 + 10 x 0.91667 + 5 x 1) / 20 x 100 = 95.833 -> 95.8
    assert score_account(facts, AS_OF, {"min_coverage": 0.2}).score == 95.8


#: One signal, seat utilisation straight to 0..100: the score is 100 x active / seats.
LINEAR_SEATS: dict[str, Any] = {
    "signals": {
        name: {"weight": 0} for name in DEFAULT_MODEL["signals"] if name != "seat_utilisation"
    }
    | {"seat_utilisation": {"weight": 1, "normalize": {"kind": "linear", "bad": 0, "good": 1}}},
}


@pytest.mark.parametrize(
    ("active", "seats", "score", "band"),
    [
        (100, 100, 100.0, "healthy"),
        (70, 100, 70.0, "healthy"),  # exactly on the threshold: the better band
        (699, 1000, 69.9, "neutral"),
        (13991, 20000, 70.0, "healthy"),  # 69.955 rounds to 70.0: the band follows the shown score
        (50, 100, 50.0, "neutral"),
        (499, 1000, 49.9, "at_risk"),
        (30, 100, 30.0, "at_risk"),
        (299, 1000, 29.9, "critical"),
        (0, 100, 0.0, "critical"),
    ],
)
def test_given_scores_on_and_around_thresholds_when_banding_then_on_the_line_is_the_better_band(
    active: int, seats: int, score: float, band: str
) -> None:
    # Given a model whose score is 100 x utilisation, and an account at active/seats
    facts = AccountFacts("ACC-3", usage=(UsageMonth(month(10), active, seats),))
    # when scored
    result = score_account(facts, AS_OF, LINEAR_SEATS)
    # then the rounded score and its band are as the table says (healthy >= 70 > neutral >= 50 >
    # at_risk >= 30 > critical)
    assert (result.score, result.band) == (score, band)


def test_given_equal_contributions_when_listing_top_factors_then_ties_go_by_signal_name():
    # Given three signals of equal weight, all at their worst, and a fourth at its best
    overdue_is_0 = {"kind": "steps", "steps": [{"below": 0, "value": 0}], "otherwise": 1}
    model = {
        "signals": {n: {"weight": 0} for n in DEFAULT_MODEL["signals"]}
        | {
            "payment_issue": {"weight": 1},
            "renewal_proximity": {"weight": 1, "normalize": overdue_is_0},
            "csat": {"weight": 1},
            "seat_utilisation": {"weight": 1},
        },
        "top_factors": 2,
    }
    facts = AccountFacts(
        "ACC-4",
        payment_issue=True,  # -> 0
        renewal_date=AS_OF - dt.timedelta(days=10),  # overdue -> 0
        tickets=(TicketFact(ago(5), ago(4), "low", csat=1),),  # csat 1 -> 0
        usage=(UsageMonth(month(10), 100, 100),),  # utilisation 1.0 -> 1
    )
    # when scored
    result = score_account(facts, AS_OF, model)
    # then csat, payment_issue and renewal_proximity each contribute 100 x 1/4 x -0.5 = -12.5;
    # the top 2 are the first two by name
    assert [(f.signal, f.contribution) for f in result.factors] == [
        ("csat", -12.5),
        ("payment_issue", -12.5),
    ]
    # and the score is 100 x 1/4 = 25.0 (critical)
    assert (result.score, result.band) == (25.0, "critical")


def test_given_history_when_scoring_then_trend_against_previous_and_window_snapshots():
    # Given earlier snapshots (score now: 40.0, from the fixture)
    history = [
        (AS_OF - dt.timedelta(days=40), 52.0),
        (AS_OF - dt.timedelta(days=31), 45.0),
        (AS_OF - dt.timedelta(days=29), 50.0),
        (AS_OF - dt.timedelta(days=1), 41.5),
        (AS_OF - dt.timedelta(days=31), 47.0),  # same date again: the last one given counts
        (AS_OF - dt.timedelta(days=2), None),  # unscored snapshot: ignored
        (AS_OF, 99.0),  # not earlier than as_of: ignored
    ]
    # when scored
    trend = score_account(fixture(), AS_OF, history=history).trend
    # then vs the previous snapshot (1 day ago, 41.5): 40.0 - 41.5 = -1.5
    assert (trend.previous_date, trend.delta_previous) == (AS_OF - dt.timedelta(days=1), -1.5)
    # and vs the latest snapshot at least 30 days old (31 days ago, 47.0): -7.0 -> declining
    # (|-7.0| > flat_within 2.0)
    assert (trend.window_date, trend.delta_window) == (AS_OF - dt.timedelta(days=31), -7.0)
    assert (trend.window_days, trend.direction) == (30, "declining")
    # and within flat_within it is flat; without an old enough snapshot there is no direction
    flat = score_account(fixture(), AS_OF, history=[(AS_OF - dt.timedelta(days=30), 42.0)])
    assert (flat.trend.delta_window, flat.trend.direction) == (-2.0, "flat")
    fresh = score_account(fixture(), AS_OF, history=[(AS_OF - dt.timedelta(days=29), 30.0)])
    assert (fresh.trend.delta_previous, fresh.trend.delta_window) == (10.0, None)
    assert fresh.trend.direction is None


def test_given_mid_month_as_of_when_scoring_then_the_partial_month_still_does_not_count():
    # Given the fixture scored on the 1st and on the 20th of November (November usage partial)
    first = score_account(fixture(), AS_OF)
    later = score_account(fixture(), dt.date(2026, 11, 20))
    # then usage trend and utilisation read the same complete months (May..October)
    read = {f.signal: f.value for f in first.contributions}
    again = {f.signal: f.value for f in later.contributions}
    assert (read["usage_trend"], read["seat_utilisation"]) == (-0.125, 0.35)
    assert (again["usage_trend"], again["seat_utilisation"]) == (-0.125, 0.35)
    # and once November is complete (as of 1 December) it counts: Sep..Nov (81+49+0)/3 = 43.33
    # vs Jun..Aug 80: 43.33/80 - 1 = -0.4583
    december = score_account(fixture(), dt.date(2026, 12, 1))
    trend = next(f for f in december.contributions if f.signal == "usage_trend")
    assert trend.value == pytest.approx(130 / 3 / 80 - 1)
    assert trend.text == "active users down 46% (last 3 months vs 3 before)"


def test_given_same_facts_when_scoring_twice_then_identical_results():
    # Given the same facts and model, when scored twice, then the results are equal
    assert score_account(fixture(), AS_OF) == score_account(fixture(), AS_OF)
