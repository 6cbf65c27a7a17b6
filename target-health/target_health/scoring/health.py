"""The health score of an account as of a date, from a declarative model (see SCORING.md).

Each enabled signal reads a raw value from the facts (or finds none), normalises it to 0..1 and
weighs it. Missing signals are skipped (their weight is shared out among the others) or take the
model's fixed value. With W the summed weight of the signals that count:

    score        = 100 x sum(weight x normalised) / W
    contribution = 100 x weight / W x (normalised - 0.5)       (so score = 50 + sum of them)

The score is rounded to 1 decimal and its band is read from the rounded score (a score exactly
on a threshold belongs to the better band), so the score shown and the band always agree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from target_health.scoring.facts import PRIORITIES, AccountFacts, TicketFact, UsageMonth, instant
from target_health.scoring.model import SIGNAL_PARAMS, HealthModel, parse_model
from target_health.scoring.nps import account_nps

DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Observation:
    value: float | None  # the raw value; None when the facts hold none
    text: str  # what the value means, for a person ("active users 22% of seats (11 of 50)")


@dataclass(frozen=True, slots=True)
class Factor:
    signal: str
    value: float | None  # raw value (None when imputed)
    normalised: float  # 0..1
    weight: float  # share of the score, 0..1 (rounded to 4 decimals)
    contribution: float  # points above (+) or below (-) 50, rounded to 2 decimals
    text: str
    imputed: bool  # True: the signal was missing and took the model's fixed value


@dataclass(frozen=True, slots=True)
class Trend:
    previous_date: dt.date | None  # the latest earlier snapshot
    delta_previous: float | None  # score - that snapshot's score
    window_days: int
    window_date: dt.date | None  # the latest snapshot at least window_days before as_of
    delta_window: float | None
    direction: str | None  # improving | flat | declining, from delta_window


@dataclass(frozen=True, slots=True)
class HealthScore:
    account_key: str
    as_of: dt.date
    score: float | None  # 0..100, 1 decimal; None when coverage < model.min_coverage
    band: str | None
    factors: tuple[Factor, ...]  # the most negative contributions, worst first
    strengths: tuple[Factor, ...]  # the most positive contributions, best first
    contributions: tuple[Factor, ...]  # every signal that counted, in model order
    trend: Trend
    model_version: str
    used: tuple[str, ...]  # signals read from the facts
    missing: tuple[str, ...]  # signals with no value (skipped or imputed)
    imputed: tuple[str, ...]  # the missing ones that took the model's fixed value
    coverage: float  # weight share of the used signals, 0..1 (4 decimals)


# -- calendar helpers ---------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months; a day past the target month's end becomes its last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - DAY).day
    return dt.date(year, month, min(day.day, last))


def last_complete_month(as_of: dt.date) -> dt.date:
    """The first day of the latest calendar month that ended on or before ``as_of``."""
    return add_months(as_of.replace(day=1), -1)


def complete_months(facts: AccountFacts, as_of: dt.date) -> dict[dt.date, UsageMonth]:
    """Usage by month, complete months only (a partial current month would read as a drop).
    When a month is given twice, the last one given counts."""
    last = last_complete_month(as_of)
    return {u.month: u for u in facts.usage if u.month <= last}


def _pct(x: float) -> str:
    return f"{abs(x) * 100:.0f}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- signal readers -----------------------------------------------------------------------------


def _usage_trend(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    n = params["months"]
    months = complete_months(facts, as_of)
    last = last_complete_month(as_of)
    recent = [months[m].active_users for i in range(n) if (m := add_months(last, -i)) in months]
    earlier = [
        months[m].active_users for i in range(n, 2 * n) if (m := add_months(last, -i)) in months
    ]
    if not recent or not earlier:
        return Observation(None, f"fewer than 2 x {n} months of usage")
    now, before = sum(recent) / len(recent), sum(earlier) / len(earlier)
    # From zero users: +100% (the cap) if any came back, else flat.
    value = (0.0 if now == 0 else 1.0) if before == 0 else min(1.0, now / before - 1)
    way = "up" if value > 0 else "down" if value < 0 else "flat,"
    return Observation(value, f"active users {way} {_pct(value)} (last {n} months vs {n} before)")


def _seat_utilisation(
    facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]
) -> Observation:
    months = complete_months(facts, as_of)
    last = last_complete_month(as_of)
    for i in range(params["lookback_months"]):
        m = add_months(last, -i)
        if m in months:
            u = months[m]
            seats = u.seats if u.seats else facts.seats
            if not seats:
                return Observation(None, "no seat count")
            value = u.active_users / seats
            return Observation(
                value,
                f"active users {_pct(value)} of seats ({u.active_users} of {seats}, {m:%Y-%m})",
            )
    return Observation(None, "no recent usage month")


def open_tickets(tickets: Iterable[TicketFact], as_of: dt.date) -> list[TicketFact]:
    """Tickets opened at or before as_of (00:00 UTC) and not closed by then."""
    at = instant(as_of)
    return [t for t in tickets if t.opened <= at and (t.closed is None or t.closed > at)]


def _ticket_volume(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    days = params["window_days"]
    end = instant(as_of)
    n = sum(1 for t in facts.tickets if end - days * DAY < t.opened <= end)
    return Observation(float(n), f"{_plural(n, 'ticket')} opened in the last {days} days")


def _open_ticket_severity(
    facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]
) -> Observation:
    weights = params["priority_weights"]
    tickets = open_tickets(facts.tickets, as_of)
    value = math.fsum(weights[t.priority or "medium"] for t in tickets)
    counts = [(p, sum(1 for t in tickets if (t.priority or "medium") == p)) for p in PRIORITIES]
    detail = ", ".join(f"{n} {p}" for p, n in reversed(counts) if n)
    text = f"{_plural(len(tickets), 'open ticket')} ({detail})" if tickets else "no open tickets"
    return Observation(value, text)


def _open_ticket_age(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    tickets = open_tickets(facts.tickets, as_of)
    if not tickets:
        return Observation(0.0, "no open tickets")
    at = instant(as_of)
    days = max((at - t.opened) / DAY for t in tickets)
    return Observation(days, f"oldest open ticket {int(days)} days old")


def _csat(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    days = params["window_days"]
    end = instant(as_of)
    ratings = [
        t.csat
        for t in facts.tickets
        if t.csat is not None and end - days * DAY < (t.closed or t.opened) <= end
    ]
    if not ratings:
        return Observation(None, f"no CSAT rating in the last {days} days")
    value = sum(ratings) / len(ratings)
    return Observation(value, f"CSAT {value:.1f} of 5 ({_plural(len(ratings), 'rating')})")


def _nps(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    result = account_nps(facts, as_of, params["window_days"])
    if result.nps is None:
        return Observation(None, f"no NPS response in the last {params['window_days']} days")
    return Observation(
        result.nps, f"NPS {result.nps:+.0f} ({_plural(result.responses, 'response')})"
    )


def _engagement_recency(
    facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]
) -> Observation:
    if facts.last_engagement is None:
        return Observation(None, "no engagement recorded")
    days = max(0.0, (instant(as_of) - facts.last_engagement) / DAY)
    return Observation(days, f"last engagement {int(days)} days ago")


def _renewal_proximity(
    facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]
) -> Observation:
    if facts.renewal_date is None:
        return Observation(None, "no renewal date")
    days = (facts.renewal_date - as_of).days
    if days < 0:
        text = f"renewal {-days} days overdue"
    else:
        text = "renewal today" if days == 0 else f"renewal in {days} days"
    return Observation(float(days), text)


def _payment_issue(facts: AccountFacts, as_of: dt.date, params: Mapping[str, Any]) -> Observation:
    if facts.payment_issue is None:
        return Observation(None, "payment status unknown")
    if facts.payment_issue:
        return Observation(1.0, "payment issue flagged")
    return Observation(0.0, "no payment issue")


READERS: dict[str, Callable[[AccountFacts, dt.date, Mapping[str, Any]], Observation]] = {
    "usage_trend": _usage_trend,
    "seat_utilisation": _seat_utilisation,
    "ticket_volume": _ticket_volume,
    "open_ticket_severity": _open_ticket_severity,
    "open_ticket_age": _open_ticket_age,
    "csat": _csat,
    "nps": _nps,
    "engagement_recency": _engagement_recency,
    "renewal_proximity": _renewal_proximity,
    "payment_issue": _payment_issue,
}


def observe(
    facts: AccountFacts, as_of: dt.date, signal: str, model: HealthModel | None = None
) -> Observation:
    """The raw value of one signal, with the model's settings for it (else the defaults)."""
    spec = model.signal(signal) if model is not None else None
    params = spec.params if spec is not None else SIGNAL_PARAMS[signal]
    return READERS[signal](facts, as_of, params)


# -- the score ----------------------------------------------------------------------------------


def trend_of(
    score: float | None,
    as_of: dt.date,
    history: Iterable[tuple[dt.date, float | None]],
    model: HealthModel,
) -> Trend:
    """Deltas against earlier snapshots: only snapshots dated before ``as_of`` with a score
    count; for a date given twice, the last one given counts."""
    earlier: dict[dt.date, float] = {}
    for day, old in history:
        if day < as_of and old is not None:
            earlier[day] = old
    days = model.trend_days
    previous = max(earlier, default=None)
    cutoff = as_of - days * DAY
    window = max((d for d in earlier if d <= cutoff), default=None)

    def delta(day: dt.date | None) -> float | None:
        return None if score is None or day is None else round(score - earlier[day], 1)

    d_prev, d_win = delta(previous), delta(window)
    direction = None
    if d_win is not None:
        direction = (
            "flat" if abs(d_win) <= model.flat_within else "improving" if d_win > 0 else "declining"
        )
    return Trend(previous, d_prev, days, window, d_win, direction)


def score_account(
    facts: AccountFacts,
    as_of: dt.date,
    model: HealthModel | Mapping[str, Any] | None = None,
    history: Sequence[tuple[dt.date, float | None]] = (),
) -> HealthScore:
    """The health of one account as of ``as_of`` (00:00 UTC), with its trend against
    ``history``, the account's earlier (date, score) snapshots."""
    if not isinstance(model, HealthModel):
        model = parse_model(model)
    counted: list[tuple[str, Observation, float, float]] = []  # name, obs, norm, weight
    used: list[str] = []
    missing: list[str] = []
    imputed: list[str] = []
    total = math.fsum(s.weight for s in model.signals)
    for spec in model.signals:
        obs = READERS[spec.name](facts, as_of, spec.params)
        if obs.value is not None:
            used.append(spec.name)
            counted.append((spec.name, obs, spec.normalize(obs.value), spec.weight))
            continue
        missing.append(spec.name)
        if spec.missing is not None:
            imputed.append(spec.name)
            counted.append((spec.name, obs, spec.missing, spec.weight))
    coverage = math.fsum(w for name, _, _, w in counted if name in used) / total

    weight = math.fsum(w for *_, w in counted)
    if coverage < model.min_coverage or weight == 0:
        return HealthScore(
            facts.account_key, as_of, None, None, (), (), (),
            trend_of(None, as_of, history, model), model.version,
            tuple(used), tuple(missing), tuple(imputed), round(coverage, 4),
        )  # fmt: skip
    raw = 100 * math.fsum(w * n for _, _, n, w in counted) / weight
    score = round(raw, 1)
    factors = []
    for name, obs, norm, w in counted:
        is_imputed = name in imputed
        text = obs.text
        if is_imputed:
            text = f"{text} (counted as {norm:.2f})"
        factors.append(
            Factor(
                signal=name,
                value=None if is_imputed else obs.value,
                normalised=round(norm, 4),
                weight=round(w / weight, 4),
                contribution=round(100 * w / weight * (norm - 0.5), 2),
                text=text,
                imputed=is_imputed,
            )
        )
    # Ties (equal rounded contributions) are broken by signal name, alphabetically.
    negative = sorted(
        (f for f in factors if f.contribution < 0), key=lambda f: (f.contribution, f.signal)
    )
    positive = sorted(
        (f for f in factors if f.contribution > 0), key=lambda f: (-f.contribution, f.signal)
    )
    return HealthScore(
        account_key=facts.account_key,
        as_of=as_of,
        score=score,
        band=model.band_of(score),
        factors=tuple(negative[: model.top_factors]),
        strengths=tuple(positive[: model.top_factors]),
        contributions=tuple(factors),
        trend=trend_of(score, as_of, history, model),
        model_version=model.version,
        used=tuple(used),
        missing=tuple(missing),
        imputed=tuple(imputed),
        coverage=round(coverage, 4),
    )


def score_accounts(
    accounts: Iterable[AccountFacts],
    as_of: dt.date,
    model: HealthModel | Mapping[str, Any] | None = None,
    history: Mapping[str, Sequence[tuple[dt.date, float | None]]] | None = None,
) -> list[HealthScore]:
    """``score_account`` for each account, in the order given; ``history`` by account_key."""
    parsed = model if isinstance(model, HealthModel) else parse_model(model)
    history = history or {}
    return [score_account(f, as_of, parsed, history.get(f.account_key, ())) for f in accounts]
