"""From the canonical store to one :class:`~target_health.scoring.facts.AccountFacts` per customer.

The store keeps one row per source record; a customer may have an account record in each CRM.
One SQL query resolves every row to its canonical account (``ext:<external id>``,
``dom:<domain>`` or the lone source record, see mapping.account_key), through, in order: the
row's own account reference, a HubSpot association (``parents``), or its contact's account,
then through a merge (a merged-away account's key is a parent alias of its survivor). An
account record with neither external id nor domain joins the customer of another CRM whose
contact has the same keyed e-mail token (``tok:v1:...``: the plaintext stays encrypted); it
returns the rows ordered by canonical account, so accounts are assembled one at a time and
memory stays flat however many there are.

Merging the account records of one customer: live records win over deleted ones, then the most
recently modified; each field takes the first non-null value in that order. A customer whose
account records are all deleted (archived, merged away) is left out. ``churned_on``: a customer
marked as a former customer in any CRM churned on the close date of its latest lost renewal, or
else on the date its record last changed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .scoring.facts import AccountFacts, DealFact, NpsFact, TicketFact, UsageMonth
from .store import Store

log = logging.getLogger(__name__)

_QUERY = """
WITH lonely AS (
    -- an account record known by neither external id nor domain, linked to the customer of
    -- another CRM by a contact with the same keyed e-mail token (the lowest key if several)
    SELECT c1.account_ref AS src, MIN(b.account_ref) AS canon
    FROM records c1
    JOIN records a ON a.entity = 'account' AND a.key = c1.account_ref AND a.account_ref = a.key
    JOIN records c2 ON c2.entity = 'contact' AND c2.token = c1.token AND c2.key <> c1.key
    JOIN records b ON b.entity = 'account' AND b.key = c2.account_ref AND b.account_ref <> b.key
    WHERE c1.entity = 'contact' AND c1.token IS NOT NULL AND c1.deleted = 0 AND c2.deleted = 0
    GROUP BY c1.account_ref
),
child AS (
    SELECT r.entity, r.deleted, r.data,
           COALESCE(r.account_ref, p.account_ref, c.account_ref, cp.account_ref) AS src
    FROM records r
    LEFT JOIN parents p ON p.child = r.key
    LEFT JOIN records c ON c.entity = 'contact' AND c.key = r.contact_ref
    LEFT JOIN parents cp ON cp.child = r.contact_ref
    WHERE r.entity <> 'account'
),
resolved AS (
    SELECT child.entity, child.deleted, child.data,
           COALESCE(m.account_ref, child.src) AS src
    FROM child LEFT JOIN parents m ON m.child = child.src
)
SELECT COALESCE(l.canon, a.account_ref, resolved.src) AS canon,
       resolved.entity, resolved.deleted, resolved.data
FROM resolved
LEFT JOIN records a ON a.entity = 'account' AND a.key = resolved.src
LEFT JOIN lonely l ON l.src = resolved.src
WHERE COALESCE(l.canon, a.account_ref, resolved.src) IS NOT NULL
UNION ALL
SELECT COALESCE(l.canon, r.account_ref), r.entity, r.deleted, r.data
FROM records r LEFT JOIN lonely l ON l.src = r.key
WHERE r.entity = 'account'
ORDER BY 1, 2
"""


@dataclass
class AssemblyStats:
    accounts: int = 0
    skipped_deleted: int = 0
    orphans: int = 0  # rows whose account is unknown (no account record in any CRM)
    dropped: Counter[str] = field(default_factory=Counter)  # rows unusable for facts, by why


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _merge_accounts(rows: list[tuple[bool, dict[str, Any]]]) -> dict[str, Any]:
    ordered = sorted(rows, key=lambda r: r[1].get("modified") or "", reverse=True)  # newest first
    ordered.sort(key=lambda r: r[0])  # stable: live before deleted
    merged: dict[str, Any] = {}
    for _, data in ordered:
        for name, value in data.items():
            if merged.get(name) is None and value is not None:
                merged[name] = value
    return merged


class _Builder:
    def __init__(self, key: str, stats: AssemblyStats) -> None:
        self.key = key
        self.stats = stats
        self.accounts: list[tuple[bool, dict[str, Any]]] = []
        self.usage: dict[dt.date, UsageMonth] = {}
        self.tickets: list[TicketFact] = []
        self.nps: list[NpsFact] = []
        self.deals: list[DealFact] = []
        self.last_engagement: dt.datetime | None = None

    def _engaged(self, moment: dt.datetime | None) -> None:
        if moment is not None and (self.last_engagement is None or moment > self.last_engagement):
            self.last_engagement = moment

    def add(self, entity: str, deleted: bool, data: dict[str, Any]) -> None:
        if entity == "account":
            self.accounts.append((deleted, data))
            return
        if deleted:
            return
        if entity == "usage":
            month = _date(data.get("month"))
            if month is None or month.day != 1:
                self.stats.dropped["usage month"] += 1
                return
            self.usage[month] = UsageMonth(
                month,
                int(data["active_users"]),
                data.get("seats"),
                data.get("logins"),
                data.get("features_adopted"),
            )
        elif entity in ("ticket", "conversation"):
            opened = _when(data.get("opened_at"))
            if opened is None:
                self.stats.dropped[f"{entity} opened_at"] += 1
                return
            closed = _when(data.get("closed_at"))
            if data.get("status") == "closed" and closed is None:
                closed = opened  # closed at an unknown time: not open, not aged
            self.tickets.append(TicketFact(opened, closed, data.get("priority"), data.get("csat")))
            self._engaged(opened)
        elif entity == "nps_response":
            submitted = _when(data.get("submitted_at"))
            if submitted is None or data.get("score") is None:
                self.stats.dropped["nps submitted_at"] += 1
                return
            self.nps.append(NpsFact(int(data["score"]), submitted))
            self._engaged(submitted)
        elif entity == "deal":
            close = _date(data.get("close_date"))
            kind, amount = data.get("kind"), data.get("amount")
            if (
                close is None
                or amount is None
                or kind not in ("new_business", "renewal", "expansion")
            ):
                self.stats.dropped["deal kind/amount/close_date"] += 1
                return
            self.deals.append(DealFact(kind, max(float(amount), 0.0), data["stage"], close))
        elif entity == "contact":
            self._engaged(_when(data.get("last_seen_at")))

    def build(self) -> AccountFacts | None:
        if not self.accounts:
            self.stats.orphans += 1
            return None
        if all(deleted for deleted, _ in self.accounts):
            self.stats.skipped_deleted += 1
            return None
        acct = _merge_accounts(self.accounts)
        churned_on = None
        if any(d.get("churned") for deleted, d in self.accounts if not deleted):
            lost = [d.close_date for d in self.deals if d.kind == "renewal" and d.stage == "lost"]
            churned_on = max(lost) if lost else _date(acct.get("modified"))
        seats = acct.get("seats")
        self.stats.accounts += 1
        return AccountFacts(
            account_key=self.key,
            name=acct.get("name"),
            arr=float(acct["arr"]) if acct.get("arr") is not None else None,
            seats=int(seats) if seats is not None else None,
            plan=acct.get("plan"),
            renewal_date=_date(acct.get("renewal_date")),
            customer_since=_date(acct.get("customer_since")),
            churned_on=churned_on,
            payment_issue=acct.get("payment_issue"),
            last_engagement=self.last_engagement,
            usage=tuple(self.usage[m] for m in sorted(self.usage)),
            tickets=tuple(sorted(self.tickets, key=lambda t: t.opened)),
            nps=tuple(sorted(self.nps, key=lambda n: n.submitted)),
            deals=tuple(sorted(self.deals, key=lambda d: (d.close_date, d.kind, d.amount))),
        )


def account_facts(store: Store, stats: AssemblyStats | None = None) -> Iterator[AccountFacts]:
    """Every live customer's facts, in canonical account key order (one query, streamed)."""
    stats = stats if stats is not None else AssemblyStats()
    builder: _Builder | None = None
    for canon, entity, deleted, data in store.stream(_QUERY):
        if builder is None or builder.key != canon:
            if builder is not None:
                facts = builder.build()
                if facts is not None:
                    yield facts
            builder = _Builder(str(canon), stats)
        builder.add(str(entity), bool(deleted), json.loads(data))
    if builder is not None:
        facts = builder.build()
        if facts is not None:
            yield facts
