"""Helpers for scoring tests: the sandbox's deterministic world as AccountFacts.

In production the facts come from target-health's store; here they are built straight from the
world generator's bundles (what the sandbox seeds into the three CRMs and the usage export), so
the scores can be compared with each account's ground-truth label.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from crm_connectors.sandbox.world import Bundle, WorldSpec, generate
from target_health.scoring.facts import AccountFacts, DealFact, NpsFact, TicketFact, UsageMonth

#: The world's "now" (WorldSpec.anchor, 2026-11-01 00:00 UTC) as the scoring date.
WORLD_AS_OF = WorldSpec().anchor.date()


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def facts_of(bundle: Bundle) -> AccountFacts:
    """One bundle as the facts the store would assemble: the account's fields, its deals,
    tickets, NPS responses and monthly usage; the last engagement is the latest time any of
    its contacts was seen."""
    a = bundle.account
    seen = [c.last_seen_ms for c in bundle.contacts if c.last_seen_ms is not None]
    return AccountFacts(
        account_key=a.external_id,
        name=a.name,
        arr=a.arr,
        seats=a.seats,
        plan=a.plan,
        renewal_date=_day(a.renewal_date),
        customer_since=_day(a.customer_since),
        churned_on=_day(a.churned_on),
        payment_issue=a.payment_issue,
        last_engagement=_at(max(seen)) if seen else None,
        usage=tuple(
            UsageMonth(
                month=dt.date.fromisoformat(u.month),
                active_users=u.active_users,
                seats=u.seats,
                logins=u.logins,
                features_adopted=u.features_adopted,
            )
            for u in bundle.usage
        ),
        tickets=tuple(
            TicketFact(
                opened=_at(t.created_ms),
                closed=_at(t.closed_ms) if t.closed_ms is not None else None,
                priority=t.priority,
                csat=t.csat,
            )
            for t in bundle.tickets
        ),
        nps=tuple(NpsFact(r.score, _at(r.submitted_ms)) for r in bundle.nps),
        deals=tuple(
            DealFact(d.kind, d.amount, d.stage, dt.date.fromisoformat(d.close_date))
            for d in bundle.deals
        ),
    )


def world(size: int, seed: int) -> Iterator[tuple[str, AccountFacts]]:
    """(label, facts) for each account of the world ``WorldSpec(size, seed)``, in key order."""
    for bundle in generate(WorldSpec(size=size, seed=seed)):
        yield bundle.account.label, facts_of(bundle)


def confusion(pairs: Iterable[tuple[str, str | None]]) -> dict[str, dict[str, int]]:
    """label -> band -> count, from (label, band) pairs."""
    out: dict[str, dict[str, int]] = {}
    for label, band in pairs:
        row = out.setdefault(label, {})
        key = band or "unscored"
        row[key] = row.get(key, 0) + 1
    return out
