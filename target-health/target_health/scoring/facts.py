"""Facts per account: what the scoring engine reads, assembled by the caller (from the store).

Every field may be missing (``None`` or an empty tuple): each signal has a rule for that.
Datetimes are UTC; a naive datetime is taken as UTC and stored aware. Values outside their
domain (an NPS score of 11, a deal stage "pending") raise ``ValueError`` naming the field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PRIORITIES = ("low", "medium", "high", "urgent")
DEAL_KINDS = ("new_business", "renewal", "expansion")
DEAL_STAGES = ("open", "won", "lost")


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def instant(as_of: dt.date) -> dt.datetime:
    """The instant a measurement "as of" a date refers to: that date at 00:00 UTC."""
    return dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.timezone.utc)


def _set_utc(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if value is not None:
        object.__setattr__(obj, name, utc(value))


@dataclass(frozen=True, slots=True)
class UsageMonth:
    month: dt.date  # first day of the month
    active_users: int
    seats: int | None = None
    logins: int | None = None
    features_adopted: int | None = None

    def __post_init__(self) -> None:
        if self.month.day != 1:
            raise ValueError(f"UsageMonth.month: must be the first of a month, got {self.month}")
        if self.active_users < 0:
            raise ValueError("UsageMonth.active_users: must be >= 0")
        if self.seats is not None and self.seats < 0:
            raise ValueError("UsageMonth.seats: must be >= 0")


@dataclass(frozen=True, slots=True)
class TicketFact:
    opened: dt.datetime
    closed: dt.datetime | None = None
    priority: str | None = None  # low | medium | high | urgent
    csat: int | None = None  # 1..5

    def __post_init__(self) -> None:
        _set_utc(self, "opened")
        _set_utc(self, "closed")
        if self.priority is not None and self.priority not in PRIORITIES:
            raise ValueError(f"TicketFact.priority: must be one of {PRIORITIES}")
        if self.csat is not None and not 1 <= self.csat <= 5:
            raise ValueError("TicketFact.csat: must be 1..5")


@dataclass(frozen=True, slots=True)
class NpsFact:
    score: int  # 0..10
    submitted: dt.datetime

    def __post_init__(self) -> None:
        _set_utc(self, "submitted")
        if not 0 <= self.score <= 10:
            raise ValueError("NpsFact.score: must be 0..10")


@dataclass(frozen=True, slots=True)
class DealFact:
    kind: str  # new_business | renewal | expansion
    amount: float  # annual recurring amount of the contract line
    stage: str  # open | won | lost
    close_date: dt.date
    product: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEAL_KINDS:
            raise ValueError(f"DealFact.kind: must be one of {DEAL_KINDS}")
        if self.stage not in DEAL_STAGES:
            raise ValueError(f"DealFact.stage: must be one of {DEAL_STAGES}")
        if self.amount < 0:
            raise ValueError("DealFact.amount: must be >= 0")


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_key: str
    name: str | None = None
    arr: float | None = None
    seats: int | None = None
    plan: str | None = None
    renewal_date: dt.date | None = None
    customer_since: dt.date | None = None
    churned_on: dt.date | None = None
    payment_issue: bool | None = None
    last_engagement: dt.datetime | None = None  # UTC
    usage: tuple[UsageMonth, ...] = ()
    tickets: tuple[TicketFact, ...] = ()
    nps: tuple[NpsFact, ...] = ()
    deals: tuple[DealFact, ...] = ()

    def __post_init__(self) -> None:
        _set_utc(self, "last_engagement")
        for name in ("usage", "tickets", "nps", "deals"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.arr is not None and self.arr < 0:
            raise ValueError("AccountFacts.arr: must be >= 0")
        if self.seats is not None and self.seats < 0:
            raise ValueError("AccountFacts.seats: must be >= 0")
