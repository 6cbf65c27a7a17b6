"""Segments from declarative rules (SCORING.md, "Segments"): the first matching rule wins, a
comparison on a missing value is false, and the defaults place typical accounts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from target_health.scoring.facts import AccountFacts, DealFact, NpsFact, UsageMonth
from target_health.scoring.health import score_account
from target_health.scoring.segments import assign_segment, segment_fields, segment_of

AS_OF = dt.date(2026, 11, 1)
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

#: Fields as segment_fields gives them, for an unremarkable healthy account.
BASE: dict[str, Any] = {
    "score": 75.0,
    "band": "healthy",
    "trend": 0.0,
    "trend_previous": 0.0,
    "nps": 20.0,
    "nps_responses": 5,
    "utilisation": 0.7,
    "usage_trend": 0.0,
    "renewal_days": 200,
    "open_tickets": 0,
    "arr": 10_000.0,
    "payment_issue": False,
    "churned": False,
}


@pytest.mark.parametrize(
    ("change", "segment"),
    [
        ({}, "stable"),
        ({"churned": True, "score": 10.0, "band": "critical"}, "churned"),
        ({"score": None, "band": None}, "unscored"),
        ({"score": 20.0, "band": "critical"}, "churn_risk"),
        ({"score": 40.0, "band": "at_risk", "renewal_days": 90}, "churn_risk"),
        ({"score": 40.0, "band": "at_risk", "renewal_days": 91}, "at_risk"),
        ({"score": 40.0, "band": "at_risk", "renewal_days": None}, "at_risk"),
        ({"trend": -10.0}, "at_risk"),
        ({"trend": -9.9}, "stable"),
        ({"utilisation": 0.95, "score": 90.0, "nps": 80.0}, "expansion_candidate"),
        ({"score": 90.0, "nps": 80.0}, "champion"),
        ({"score": 90.0, "nps": None}, "stable"),  # no NPS: "nps >= 50" is false
        ({"score": 60.0, "band": "neutral", "utilisation": 0.95}, "stable"),
    ],
)
def test_given_default_rules_when_assigning_then_first_matching_rule_wins(
    change: dict[str, Any], segment: str
) -> None:
    # Given an account's fields, when the default rules are applied, then its segment is as
    # listed in SCORING.md's default rule table
    assert assign_segment(BASE | change).name == segment


def test_given_custom_rules_when_assigning_then_order_or_and_default_apply() -> None:
    # Given two rules with one name (an "or") and a catch-all rule in the middle
    rules = {
        "rules": [
            {"name": "watch", "when": {"band": {"in": ["neutral", "at_risk"]}}},
            {"name": "watch", "when": {"payment_issue": {"eq": True}}},
            {"name": "vip", "when": {"arr": {"gte": 100_000}}},
            {"name": "everyone", "when": {}},
            {"name": "never", "when": {"score": {"gte": 0}}},
        ],
        "default": "unused",
    }
    # then the first matching rule wins, and the index says which rule it was
    assert assign_segment(BASE | {"band": "neutral"}, rules).rule == 0
    assert assign_segment(BASE | {"payment_issue": True}, rules).name == "watch"
    assert assign_segment(BASE | {"arr": 250_000.0}, rules).name == "vip"
    got = assign_segment(BASE, rules)
    assert (got.name, got.rule) == ("everyone", 3)
    # and without a matching rule the default applies, with no rule index
    fallback = assign_segment(BASE, {"rules": [{"name": "x", "when": {"arr": {"is_null": True}}}]})
    assert (fallback.name, fallback.rule) == ("stable", None)


def test_given_facts_when_computing_fields_then_they_follow_the_score_and_the_facts() -> None:
    # Given a healthy, fully used account renewing in 30 days with two promoters
    facts = AccountFacts(
        "ACC-9",
        arr=50_000.0,
        seats=10,
        renewal_date=AS_OF + dt.timedelta(days=30),
        payment_issue=False,
        last_engagement=T0 - dt.timedelta(days=1),
        usage=tuple(UsageMonth(dt.date(2026, m, 1), 10, 10) for m in range(5, 11)),
        nps=(NpsFact(10, T0 - dt.timedelta(days=3)), NpsFact(9, T0 - dt.timedelta(days=4))),
    )
    health = score_account(facts, AS_OF, history=[(AS_OF - dt.timedelta(days=30), 90.0)])
    fields = segment_fields(facts, health)
    # then the fields are read from the score and the facts; the score (CSAT missing, W = 90):
    # usage_trend 0 -> 0.3/0.35 = 0.857 x 15 = 12.857; renewal in 30 days -> 0.75 x 5 = 3.75;
    # every other signal at 1: 20 + 5 + 10 + 5 + 10 + 10 + 10 = 70;
    # 100 x 86.607 / 90 = 96.23 -> 96.2, and 96.2 - 90.0 = 6.2 against the snapshot
    assert fields == {
        "score": 96.2,
        "band": "healthy",
        "trend": 6.2,
        "trend_previous": 6.2,
        "nps": 100.0,
        "nps_responses": 2,
        "utilisation": 1.0,
        "usage_trend": 0.0,
        "renewal_days": 30,
        "open_tickets": 0,
        "arr": 50_000.0,
        "payment_issue": False,
        "churned": False,
    }
    # and with the default rules it is an expansion candidate (healthy, utilisation >= 0.9)
    assert segment_of(facts, health).name == "expansion_candidate"


def test_given_churned_then_reactivated_account_when_segmenting_then_not_churned() -> None:
    # Given an account churned in March, and one that came back with a new deal in June
    gone = AccountFacts(
        "OLD",
        churned_on=dt.date(2026, 3, 1),
        deals=(DealFact("new_business", 1_000, "won", dt.date(2025, 1, 1)),),
    )
    back = dataclasses.replace(
        gone,
        account_key="BACK",
        deals=(*gone.deals, DealFact("new_business", 800, "won", dt.date(2026, 6, 1))),
    )
    # when their segment fields are computed (no score: no signals)
    fields = [segment_fields(f, score_account(f, AS_OF)) for f in (gone, back)]
    # then only the first is churned (a won deal after churned_on reactivates, RETENTION.md)
    assert [f["churned"] for f in fields] == [True, False]
    assert [assign_segment(f).name for f in fields] == ["churned", "unscored"]
