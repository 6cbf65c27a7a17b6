"""Retention segments from declarative rules: the first rule whose conditions all hold wins.

A rule is ``{"name": ..., "when": {field: {operator: operand}, ...}}``; several rules may share
a name (an "or"). Any comparison on a field without a value (``None``) is false, except
``is_null``. When no rule matches, the account gets the default segment. The fields are listed
in SCORING.md and computed by :func:`segment_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_health.scoring.facts import AccountFacts
from target_health.scoring.health import HealthScore, observe, open_tickets
from target_health.scoring.model import (
    DEFAULT_SETTINGS,
    Condition,
    HealthModel,
    SegmentRules,
    parse_segments,
)
from target_health.scoring.nps import account_nps
from target_health.scoring.retention import arr_at


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    rule: int | None  # index of the matching rule in the rules list; None: the default


def segment_fields(
    facts: AccountFacts,
    health: HealthScore,
    model: HealthModel | None = None,
    nps_window_days: int = DEFAULT_SETTINGS["nps"]["window_days"],
) -> dict[str, Any]:
    """The values segment rules can test, for one account scored as of ``health.as_of``.

    ``utilisation`` and ``usage_trend`` are read with the health model's settings for those
    signals (defaults when the model disables them), so a rule sees the same number the score
    used.
    """
    as_of = health.as_of
    nps = account_nps(facts, as_of, nps_window_days)
    return {
        "score": health.score,
        "band": health.band,
        "trend": health.trend.delta_window,
        "trend_previous": health.trend.delta_previous,
        "nps": nps.nps,
        "nps_responses": nps.responses,
        "utilisation": observe(facts, as_of, "seat_utilisation", model).value,
        "usage_trend": observe(facts, as_of, "usage_trend", model).value,
        "renewal_days": (facts.renewal_date - as_of).days if facts.renewal_date else None,
        "open_tickets": len(open_tickets(facts.tickets, as_of)),
        "arr": facts.arr,
        "payment_issue": facts.payment_issue,
        # Churned before as_of and not back since (a won deal after churned_on reactivates).
        "churned": facts.churned_on is not None
        and facts.churned_on < as_of
        and arr_at(facts, as_of) == 0,
    }


def holds(condition: Condition, fields: Mapping[str, Any]) -> bool:
    value = fields.get(condition.field)
    op, operand = condition.op, condition.value
    if op == "is_null":
        return (value is None) == operand
    if value is None:
        return False
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "not_in":
        return value not in operand
    if op == "lt":
        return bool(value < operand)
    if op == "lte":
        return bool(value <= operand)
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    raise ValueError(f"unknown operator {op!r}")


def assign_segment(
    fields: Mapping[str, Any], rules: SegmentRules | Mapping[str, Any] | None = None
) -> Segment:
    """The segment of one account from its ``segment_fields``."""
    if not isinstance(rules, SegmentRules):
        rules = parse_segments(rules)
    for i, rule in enumerate(rules.rules):
        if all(holds(c, fields) for c in rule.conditions):
            return Segment(rule.name, i)
    return Segment(rules.default, None)


def segment_of(
    facts: AccountFacts,
    health: HealthScore,
    rules: SegmentRules | Mapping[str, Any] | None = None,
    model: HealthModel | None = None,
    nps_window_days: int = DEFAULT_SETTINGS["nps"]["window_days"],
) -> Segment:
    """``assign_segment(segment_fields(...))`` in one call."""
    return assign_segment(segment_fields(facts, health, model, nps_window_days), rules)
