"""Net Promoter Score: promoters answer 9-10, passives 7-8, detractors 0-6.

NPS = 100 x (promoters - detractors) / responses, over the responses submitted in a window of
``window_days`` before ``as_of``: after ``as_of - window_days`` at 00:00 UTC, and at or before
``as_of`` at 00:00 UTC. Every response in the window counts, including several from one contact
(responses carry no stable contact id across CRMs, so "latest per contact" is not possible).
An account's NPS uses its own responses; the overall NPS pools every response of every account
(response-weighted, not a mean of account NPS). With no response, NPS is ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from target_health.scoring.facts import AccountFacts, NpsFact, instant

DEFAULT_WINDOW_DAYS = 365


@dataclass(frozen=True, slots=True)
class NpsResult:
    nps: float | None  # -100..100, rounded to 1 decimal; None without responses
    responses: int
    promoters: int
    passives: int
    detractors: int


@dataclass(frozen=True, slots=True)
class NpsReport:
    as_of: dt.date
    window_days: int
    overall: NpsResult
    accounts: dict[str, NpsResult]  # by account_key, accounts without responses included


def in_window(responses: Iterable[NpsFact], as_of: dt.date, window_days: int) -> list[NpsFact]:
    end = instant(as_of)
    start = end - dt.timedelta(days=window_days)
    return [r for r in responses if start < r.submitted <= end]


def _result(promoters: int, detractors: int, n: int) -> NpsResult:
    value = round(100 * (promoters - detractors) / n, 1) if n else None
    return NpsResult(value, n, promoters, n - promoters - detractors, detractors)


def tally(scores: Sequence[int]) -> NpsResult:
    """NPS of a list of 0..10 scores (already windowed)."""
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return _result(promoters, detractors, len(scores))


class NpsPool:
    """The pooled NPS of several accounts, accumulated from each account's result (counts
    only, so memory stays flat): the same as ``tally`` over all their windowed scores."""

    def __init__(self) -> None:
        self.promoters = self.detractors = self.responses = 0

    def add(self, result: NpsResult) -> None:
        self.promoters += result.promoters
        self.detractors += result.detractors
        self.responses += result.responses

    def result(self) -> NpsResult:
        return _result(self.promoters, self.detractors, self.responses)


def account_nps(
    facts: AccountFacts, as_of: dt.date, window_days: int = DEFAULT_WINDOW_DAYS
) -> NpsResult:
    return tally([r.score for r in in_window(facts.nps, as_of, window_days)])


def nps_report(
    accounts: Iterable[AccountFacts], as_of: dt.date, window_days: int = DEFAULT_WINDOW_DAYS
) -> NpsReport:
    per: dict[str, NpsResult] = {}
    pooled: list[int] = []
    for facts in accounts:
        if facts.account_key in per:
            raise ValueError(f"nps_report: account {facts.account_key!r} given twice")
        scores = [r.score for r in in_window(facts.nps, as_of, window_days)]
        per[facts.account_key] = tally(scores)
        pooled.extend(scores)
    return NpsReport(as_of, window_days, tally(pooled), dict(sorted(per.items())))
