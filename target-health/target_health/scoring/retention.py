"""Revenue and logo retention, per "retention definitions v1" (RETENTION.md, the reference).

In short: an account's ARR at the start of a day comes from its won and lost deals (restating
new-business and renewal lines, additive expansions, lost renewals, ``churned_on``), summed over
products; without any won deal, from its ``arr`` field between ``customer_since`` and
``churned_on``. A period is ``[start, end)``; its cohort is every account with ARR > 0 at the
start of ``start``; each cohort account's movement is netted at account level between its ARR at
``start`` and at ``end``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from target_health.scoring.facts import AccountFacts
from target_health.scoring.health import add_months
from target_health.scoring.model import PeriodSpec

VERSION = "retention-v1"

# Order of events on one day: restating lines, then expansions, then lost renewals, then churn.
_RESTATE, _EXPAND, _LOSE, _CHURN = range(4)


@dataclass(frozen=True, slots=True)
class ArrTimeline:
    """ARR over time: ``initial`` before the first change, then ``values[i]`` from the start of
    the day after ``days[i]`` (a change dated D is in force at the start of D + 1)."""

    initial: float
    days: tuple[dt.date, ...]
    values: tuple[float, ...]

    def at(self, day: dt.date) -> float:
        """ARR at the start of ``day``: every change dated before ``day`` applied."""
        i = bisect.bisect_left(self.days, day)
        return self.values[i - 1] if i else self.initial

    def ever_before(self, day: dt.date) -> bool:
        """Whether ARR was > 0 at any time before the start of ``day``."""
        i = bisect.bisect_left(self.days, day)
        return self.initial > 0 or any(v > 0 for v in self.values[:i])


def arr_timeline(facts: AccountFacts) -> ArrTimeline:
    """The account's ARR timeline (RETENTION.md, "ARR of an account at a date")."""
    events: list[tuple[dt.date, int, str, float]] = []
    for d in facts.deals:
        product = d.product or ""
        if d.stage == "won":
            kind = _EXPAND if d.kind == "expansion" else _RESTATE
            events.append((d.close_date, kind, product, d.amount))
        elif d.stage == "lost" and d.kind == "renewal":
            events.append((d.close_date, _LOSE, product, 0.0))
    has_won = any(kind in (_RESTATE, _EXPAND) for _, kind, _, _ in events)
    if not has_won:
        # No contract history: the arr field, from customer_since (or always) to churned_on.
        events = []
        arr = facts.arr or 0.0
        initial = arr if facts.customer_since is None else 0.0
        if facts.customer_since is not None and arr > 0:
            events.append((facts.customer_since, _RESTATE, "", arr))
    else:
        initial = 0.0
    if facts.churned_on is not None:
        events.append((facts.churned_on, _CHURN, "", 0.0))

    lines: dict[str, float] = {"": initial} if initial else {}
    days: list[dt.date] = []
    values: list[float] = []
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    i = 0
    while i < len(events):
        day = events[i][0]
        restated: dict[str, float] = {}
        while i < len(events) and events[i][0] == day:
            _, kind, product, amount = events[i]
            if kind == _RESTATE:
                # Two restating lines for one product on one day: the larger (a duplicate of
                # one contract, e.g. the same renewal in two CRMs, must not count twice).
                restated[product] = max(amount, restated.get(product, 0.0))
                lines[product] = restated[product]
            elif kind == _EXPAND:
                lines[product] = lines.get(product, 0.0) + amount
            elif kind == _LOSE:
                lines[product] = 0.0
            else:
                lines = {}
            i += 1
        days.append(day)
        values.append(math.fsum(lines.values()))
    return ArrTimeline(initial, tuple(days), tuple(values))


def arr_at(facts: AccountFacts, day: dt.date) -> float:
    """ARR of the account at the start of ``day``."""
    return arr_timeline(facts).at(day)


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.date  # inclusive: ARR read at the start of this day
    end: dt.date  # exclusive: ARR read at the start of this day
    label: str


@dataclass(frozen=True, slots=True)
class Movement:
    account_key: str
    kind: str  # retained | expanded | contracted | churned | new | reactivated
    start_arr: float
    end_arr: float


@dataclass(frozen=True, slots=True)
class Retention:
    version: str
    period: Period
    cohort_logos: int  # accounts with ARR > 0 at start
    retained_logos: int  # of those, ARR > 0 at end
    churned_logos: int  # of those, ARR == 0 at end
    start_arr: float  # the cohort's ARR at start
    end_arr: float  # the cohort's ARR at end (new and reactivated accounts excluded)
    churned_arr: float
    contraction_arr: float
    expansion_arr: float
    new_logos: int
    new_arr: float
    reactivated_logos: int
    reactivated_arr: float
    grr: float | None  # (start - churned - contraction) / start, 4 decimals; None: no cohort
    nrr: float | None  # end / start
    logo_retention: float | None  # retained / cohort logos
    movements: tuple[Movement, ...]  # every account that moved or stayed, by account_key


def timelines(accounts: Iterable[AccountFacts]) -> dict[str, ArrTimeline]:
    """Each account's ARR timeline by account_key (an account given twice is an error)."""
    out: dict[str, ArrTimeline] = {}
    for facts in accounts:
        if facts.account_key in out:
            raise ValueError(f"retention: account {facts.account_key!r} given twice")
        out[facts.account_key] = arr_timeline(facts)
    return out


class ExactSum:
    """A running sum of floats kept exact (Shewchuk's non-overlapping partials, the algorithm
    behind ``math.fsum``): ``total()`` equals ``math.fsum`` of every value added, in any order,
    in constant memory."""

    __slots__ = ("_partials",)

    def __init__(self) -> None:
        self._partials: list[float] = []

    def add(self, x: float) -> None:
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def total(self) -> float:
        return math.fsum(self._partials)


class RetentionTally:
    """Retention over one period, accumulated one account at a time (memory stays flat for any
    number of accounts): ``add`` each account's ARR timeline, then ``result()``. The order of
    the accounts does not change the result; each account must be added once."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.cohort_logos = 0
        self.retained_logos = 0
        self.new_logos = 0
        self.reactivated_logos = 0
        self._start, self._end, self._churned, self._contraction, self._expansion = (
            ExactSum() for _ in range(5)
        )
        self._new, self._reactivated = ExactSum(), ExactSum()

    def add(self, timeline: ArrTimeline) -> tuple[str, float, float] | None:
        """Count one account; returns its movement: kind, ARR at start and at end, rounded to
        the cent (None: no ARR at start nor at end, not counted)."""
        period = self.period
        s, e = round(timeline.at(period.start), 2), round(timeline.at(period.end), 2)
        if s > 0:
            self.cohort_logos += 1
            self._start.add(s)
            self._end.add(e)
            if e == 0:
                kind = "churned"
                self._churned.add(s)
            else:
                self.retained_logos += 1
                if e > s:
                    kind = "expanded"
                    self._expansion.add(e - s)
                elif e < s:
                    kind = "contracted"
                    self._contraction.add(s - e)
                else:
                    kind = "retained"
        elif e > 0:
            if timeline.ever_before(period.start):
                kind = "reactivated"
                self.reactivated_logos += 1
                self._reactivated.add(e)
            else:
                kind = "new"
                self.new_logos += 1
                self._new.add(e)
        else:
            return None
        return kind, s, e

    def result(self, movements: Iterable[Movement] = ()) -> Retention:
        """The figures so far (RETENTION.md), with ``movements`` (if given) sorted by account."""
        start_arr, end_arr = self._start.total(), self._end.total()
        churned, contraction = self._churned.total(), self._contraction.total()

        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 4) if b else None

        return Retention(
            version=VERSION,
            period=self.period,
            cohort_logos=self.cohort_logos,
            retained_logos=self.retained_logos,
            churned_logos=self.cohort_logos - self.retained_logos,
            start_arr=round(start_arr, 2),
            end_arr=round(end_arr, 2),
            churned_arr=round(churned, 2),
            contraction_arr=round(contraction, 2),
            expansion_arr=round(self._expansion.total(), 2),
            new_logos=self.new_logos,
            new_arr=round(self._new.total(), 2),
            reactivated_logos=self.reactivated_logos,
            reactivated_arr=round(self._reactivated.total(), 2),
            grr=ratio(start_arr - churned - contraction, start_arr),
            nrr=ratio(end_arr, start_arr),
            logo_retention=ratio(self.retained_logos, self.cohort_logos),
            movements=tuple(sorted(movements, key=lambda m: m.account_key)),
        )


def retention(
    accounts: Iterable[AccountFacts] | Mapping[str, ArrTimeline], period: Period
) -> Retention:
    """Gross, net and logo retention of ``accounts`` (facts, or their ``timelines``) over
    ``period`` (RETENTION.md), with every account's movement. :class:`RetentionTally` gives the
    same figures one account at a time, without the movements."""
    lines = accounts if isinstance(accounts, Mapping) else timelines(accounts)
    tally = RetentionTally(period)
    moves = [
        Movement(key, *m)
        for key, timeline in lines.items()
        if (m := tally.add(timeline)) is not None
    ]
    return tally.result(moves)


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def periods(specs: Sequence[PeriodSpec], as_of: dt.date) -> list[Period]:
    """The periods the settings ask for, as of ``as_of``:

    - ``trailing_months`` (N): ``[as_of - N months, as_of)``;
    - ``quarters`` (N): the last N complete calendar quarters (ending on or before as_of),
      oldest first;
    - ``range``: ``[start, end)`` as given.
    """
    out: list[Period] = []
    for spec in specs:
        if spec.kind == "trailing_months":
            start = add_months(as_of, -spec.months)
            out.append(Period(start, as_of, f"trailing {spec.months} months to {as_of}"))
        elif spec.kind == "quarters":
            end = _quarter_start(as_of)
            for back in range(spec.count, 0, -1):
                q_end = add_months(end, -3 * (back - 1))
                q_start = add_months(q_end, -3)
                label = f"{q_start.year}-Q{(q_start.month - 1) // 3 + 1}"
                out.append(Period(q_start, q_end, label))
        else:
            assert spec.start is not None and spec.end is not None
            out.append(Period(spec.start, spec.end, f"{spec.start} to {spec.end}"))
    return out


def retention_report(
    accounts: Iterable[AccountFacts], as_of: dt.date, specs: Sequence[PeriodSpec]
) -> list[Retention]:
    """``retention`` over each period of ``periods(specs, as_of)``."""
    lines = timelines(accounts)
    return [retention(lines, p) for p in periods(specs, as_of)]
