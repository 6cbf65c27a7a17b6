"""Map world bundles into the emulated Salesforce org (see ``sandbox/seed.py``).

Ids are computed from the world's keys (``schema.make_id``), so no row needs a lookup; rows are
buffered and written in large batches; ``finish`` sets the id counters past the seeded ids.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, Store
from crm_connectors.sandbox.world import (
    DAY_MS,
    OWNERS,
    Account,
    Bundle,
    Contact,
    Ticket,
    WorldSpec,
)

from .model import (
    LEAD_SOURCES,
    PREFIXES,
    Stage,
    fmt_date,
    fmt_datetime,
    make_id,
    org_case_statuses,
    org_stages,
)

VENDOR = "salesforce"
BATCH = 10_000

#: World industry codes -> Salesforce's standard Account.Industry picklist values.
INDUSTRY = {
    "COMPUTER_SOFTWARE": "Technology",
    "FINANCIAL_SERVICES": "Finance",
    "HOSPITAL_HEALTH_CARE": "Healthcare",
    "RETAIL": "Retail",
    "LOGISTICS_AND_SUPPLY_CHAIN": "Transportation",
    "MARKETING_AND_ADVERTISING": "Media",
    "EDUCATION_MANAGEMENT": "Education",
    "MANUFACTURING": "Manufacturing",
    "TELECOMMUNICATIONS": "Telecommunications",
}
#: A world deal's stage -> the org's stage label, by profile (model.org_stages).
STAGE = {
    "realistic": {"won": "Signed", "lost": "Lost", "open": "Negotiation"},
    None: {"won": "Closed Won", "lost": "Closed Lost", "open": "Negotiation/Review"},
}
#: A world deal's kind -> Opportunity Type, by profile: the seeded org's own values; a plain
#: org's default four (a renewal recorded as a replacement); a real org's with Renewal added.
OPP_TYPE = {
    "seeded": {"new_business": "New Business", "renewal": "Renewal",
               "expansion": "Existing Customer - Upgrade"},
    "vanilla": {"new_business": "New Customer", "renewal": "Existing Customer - Replacement",
                "expansion": "Existing Customer - Upgrade"},
    "realistic": {"new_business": "New Customer", "renewal": "Renewal",
                  "expansion": "Existing Customer - Upgrade"},
}  # fmt: skip
PRIORITY = {"urgent": "Critical", "high": "High", "medium": "Medium", "low": "Low"}
STATUS = {
    "realistic": {"open": "New", "pending": "Waiting on Customer", "closed": "Resolved"},
    None: {"open": "New", "pending": "Working", "closed": "Closed"},
}
TASK_SUBJECTS = ("Call", "Send follow-up email", "Quarterly business review", "Renewal check-in")
#: A realistic org's firmographic AnnualRevenue: the company's own revenue, from its head count.
REVENUE_PER_EMPLOYEE = 150_000
#: The unique external id field each profile's org has (indexed for upserts) [API.md §2.4].
EXTERNAL_ID = {"realistic": "Customer_Number__c"}


@functools.lru_cache(maxsize=64)
def user_id(index: int) -> str:
    return make_id(PREFIXES["User"], index + 1)


def account_id(key: int) -> str:
    return make_id(PREFIXES["Account"], key)


def _realistic_account(a: Account) -> dict[str, Any]:
    """A real customer's Account: its own custom fields (other names than the seeded org's),
    the company's revenue in AnnualRevenue, a few standard fields filled, most left null."""
    return {
        "AnnualRevenue": a.employees * REVENUE_PER_EMPLOYEE if a.employees else None,
        "ShippingCity": a.city,
        "ShippingCountry": a.country,
        "AccountSource": LEAD_SOURCES[a.key % len(LEAD_SOURCES)],
        "Customer_Number__c": a.external_id,
        "ARR__c": a.arr,
        "Licenses_Purchased__c": a.seats,
        "Subscription_Tier__c": a.plan,
        "Contract_End_Date__c": a.renewal_date,
        "Customer_Since__c": a.customer_since,
        "Churned__c": a.churned_on is not None,
        # Fields the org has that field-level security hides from the integration user: the
        # record holds them; describe and queries show them only after a FieldPermissions
        # grant (model.realistic_restricted).
        "Credit_Limit__c": round(a.arr * 0.25, 2) if a.arr else None,
        "Legal_Hold__c": a.key % 17 == 0,
    }


def _realistic_deal(stage: Stage, amount: float, close_date: str) -> dict[str, Any]:
    """What a real org derives on an Opportunity: forecast category, expected revenue, fiscal
    period (a calendar fiscal year), and the activity flags."""
    year, month = int(close_date[:4]), int(close_date[5:7])
    quarter = (month - 1) // 3 + 1
    category, category_name = stage.forecast
    return {
        "IsPrivate": False,
        "ExpectedRevenue": round(amount * stage.probability / 100, 2),
        "ForecastCategory": category,
        "ForecastCategoryName": category_name,
        "HasOpportunityLineItem": False,
        "FiscalQuarter": quarter,
        "FiscalYear": year,
        "Fiscal": f"{year} {quarter}",
        "HasOpenActivity": False,
        "HasOverdueTask": False,
    }


def _state(lifecycle: str | None) -> int:
    if lifecycle == "merged":
        return MERGED
    if lifecycle in ("deleted", "archived"):
        return ARCHIVED
    return LIVE


class Seeder:
    def __init__(self, store: Store, spec: WorldSpec) -> None:
        self.store = store
        self.spec = spec
        self.buffers: dict[str, list[tuple[str, int, int, int, str]]] = {}
        self.counts: dict[str, int] = {}
        self.max_key: dict[str, int] = {}
        self.admin = user_id(0)
        self.stages = {s.label: s for s in org_stages(spec.profile)}

    def _row(
        self,
        obj: str,
        key: int,
        created_ms: int,
        updated_ms: int,
        state: int,
        data: dict[str, Any],
    ) -> None:
        rid = make_id(PREFIXES[obj], key)
        modified = fmt_datetime(updated_ms)
        base: dict[str, Any] = {
            "Id": rid,
            "IsDeleted": state != LIVE,
            "CreatedDate": modified if created_ms == updated_ms else fmt_datetime(created_ms),
            "CreatedById": self.admin,
            "LastModifiedDate": modified,
            "LastModifiedById": self.admin,
            "SystemModstamp": modified,
        }
        if obj in ("OpportunityStage", "CaseStatus"):  # setup objects: never deleted
            del base["IsDeleted"]
        base.update(data)
        buf = self.buffers.setdefault(obj, [])
        buf.append((rid, created_ms, updated_ms, state, orjson.dumps(base).decode()))
        self.counts[obj] = self.counts.get(obj, 0) + 1
        if key > self.max_key.get(obj, 0):
            self.max_key[obj] = key
        if len(buf) >= BATCH:
            self._flush(obj)

    def _flush(self, obj: str) -> None:
        rows = self.buffers.get(obj)
        if rows:
            self.store.insert_many(VENDOR, obj, rows)
            rows.clear()

    def add(self, bundle: Bundle) -> None:
        a = bundle.account
        if VENDOR not in a.crms:
            return
        if not self.counts.get("User"):
            self._users()
        life = a.lifecycle.get(VENDOR)
        owner = user_id(a.owner)
        acc_id = account_id(a.key)
        churned = a.churned_on is not None
        seeded = self.spec.profile == "seeded"  # the seeded org's custom fields and values
        self._row("Account", a.key, a.created_ms, a.updated_ms, _state(life), {
            "MasterRecordId": account_id(a.merged_into) if life == "merged" and a.merged_into
            else None,
            "Name": a.name,
            # "Former Customer" is a value the seeded org added to the standard picklist
            "Type": "Former Customer" if churned and seeded else "Customer - Direct",
            "Website": f"https://www.{a.domain}" if a.domain else None,
            "Industry": INDUSTRY.get(a.industry or "", "Other") if a.industry else None,
            # The seeded and plain orgs keep the subscription's ARR in AnnualRevenue (a
            # realistic one, the company's revenue: _realistic_account).
            "AnnualRevenue": a.arr,
            "NumberOfEmployees": a.employees,
            "BillingCity": a.city,
            "BillingCountry": a.country,
            "Phone": a.phone,
            "Description": a.description,
            "OwnerId": owner,
            **({
                "External_Account_Id__c": a.external_id,
                "Seats__c": a.seats,
                "Renewal_Date__c": a.renewal_date,
                "Plan__c": a.plan,
            } if seeded else {}),
            **(_realistic_account(a) if self.spec.realistic else {}),
        })  # fmt: skip
        contact_ids: list[str] = []
        in_org: set[int] = set()  # contacts of this account that live in Salesforce
        contacts: dict[int | None, Contact] = {}
        for c in bundle.contacts:
            if VENDOR not in c.crms:
                continue
            in_org.add(c.key)
            contacts[c.key] = c
            c_life = c.lifecycle.get(VENDOR)
            cid = make_id(PREFIXES["Contact"], c.key)
            contact_ids.append(cid)
            name = " ".join(p for p in (c.first_name, c.last_name) if p)
            self._row("Contact", c.key, c.created_ms, c.updated_ms, _state(c_life), {
                "MasterRecordId": make_id(PREFIXES["Contact"], c.merged_into)
                if c_life == "merged" and c.merged_into else None,
                "AccountId": acc_id,
                "LastName": c.last_name or "[not provided]",
                "FirstName": c.first_name,
                "Name": name or None,
                "Email": c.email,
                "Phone": c.phone,
                "Title": c.title,
                "OwnerId": owner,
                **({
                    "MailingCity": a.city,
                    "MailingCountry": a.country,
                    "IsEmailBounced": False,
                } if self.spec.realistic else {}),
            })  # fmt: skip
        for d in bundle.deals:
            if d.crm != VENDOR:
                continue
            stage = self.stages[STAGE.get(self.spec.profile, STAGE[None])[d.stage]]
            self._row("Opportunity", d.key, d.created_ms, d.updated_ms, LIVE, {
                "Name": d.name,
                "AccountId": acc_id,
                "Amount": d.amount,
                "StageName": stage.label,
                "Probability": stage.probability,
                "CloseDate": d.close_date,
                "Type": OPP_TYPE[self.spec.profile][d.kind],
                "IsClosed": stage.closed,
                "IsWon": stage.won,
                "OwnerId": owner,
                **(_realistic_deal(stage, d.amount, d.close_date)
                   if self.spec.realistic else {}),
            })  # fmt: skip
        for t in bundle.tickets:
            if t.crm != VENDOR:
                continue
            self._row("Case", t.key, t.created_ms, t.updated_ms, LIVE, {
                "CaseNumber": f"{t.key:08d}",
                "AccountId": acc_id,
                "ContactId": make_id(PREFIXES["Contact"], t.contact_key)
                if t.contact_key in in_org else None,
                "Subject": t.subject,
                "Description": t.description,
                "Priority": PRIORITY[t.priority],
                "Status": STATUS.get(self.spec.profile, STATUS[None])[t.status],
                "Origin": ("Email", "Web", "Phone")[t.key % 3],
                "IsClosed": t.status == "closed",
                "ClosedDate": fmt_datetime(t.closed_ms) if t.closed_ms else None,
                "OwnerId": owner,
                **({"CSAT__c": t.csat} if seeded else {}),
                **(self._realistic_case(t, contacts.get(t.contact_key))
                   if self.spec.realistic else {}),
            })  # fmt: skip
        for n in bundle.nps:
            if n.crm != VENDOR or not seeded:  # a plain or a real org has no NPS object
                continue
            self._row("NPS_Response__c", n.key, n.submitted_ms, n.submitted_ms, LIVE, {
                "Name": f"NPS-{n.key:07d}",
                "OwnerId": owner,
                "Account__c": acc_id,
                "Contact__c": make_id(PREFIXES["Contact"], n.contact_key)
                if n.contact_key in in_org else None,
                "Score__c": n.score,
                "Comment__c": n.comment,
                "Submitted_At__c": fmt_datetime(n.submitted_ms),
            })  # fmt: skip
        # A few activities: one or two tasks per live account, deterministic from the key.
        if life is None:
            anchor = self.spec.anchor_ms
            for i in range(1 + a.key % 2):
                task_key = a.key * 2 + i  # from the account key: seeding ranges never collide
                due = anchor - ((a.key * 7 + i * 13) % 90) * DAY_MS
                done = due < anchor - 7 * DAY_MS
                self._row("Task", task_key, due - 3 * DAY_MS, due, LIVE, {
                    "Subject": TASK_SUBJECTS[(a.key + i) % len(TASK_SUBJECTS)],
                    "WhatId": acc_id,
                    "WhoId": contact_ids[0] if contact_ids else None,
                    "Status": "Completed" if done else "Not Started",
                    "Priority": "Normal",
                    "ActivityDate": fmt_date(due),
                    "IsClosed": done,
                    "OwnerId": owner,
                })  # fmt: skip

    @staticmethod
    def _realistic_case(t: Ticket, contact: Contact | None) -> dict[str, Any]:
        """A real org's Case: the contact's e-mail and phone copied onto it, its CSAT in the
        org's own field."""
        return {
            "IsEscalated": False,
            "ContactEmail": contact.email if contact else None,
            "ContactPhone": contact.phone if contact else None,
            "Satisfaction_Score__c": t.csat,
        }

    def _users(self) -> None:
        created = self.spec.anchor_ms - 3 * 365 * DAY_MS
        for i, (first, last, email) in enumerate(OWNERS):
            self._row("User", i + 1, created, created, LIVE, {
                "Username": email,
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Email": email,
                "Alias": (first[:1] + last[:4]).lower(),
                "IsActive": True,
            })  # fmt: skip
        self._setup_records()

    def _setup_records(self) -> None:
        """The org's OpportunityStage and CaseStatus records [API.md §2.13]."""
        created = self.spec.anchor_ms - 3 * 365 * DAY_MS
        for i, s in enumerate(org_stages(self.spec.profile), start=1):
            category, name = s.forecast
            self._row("OpportunityStage", i, created, created, LIVE, {
                "MasterLabel": s.label, "ApiName": s.label, "IsActive": True, "SortOrder": i,
                "DefaultProbability": s.probability, "IsClosed": s.closed, "IsWon": s.won,
                "ForecastCategory": category, "ForecastCategoryName": name, "Description": None,
            })  # fmt: skip
        for i, (label, closed) in enumerate(org_case_statuses(self.spec.profile), start=1):
            self._row("CaseStatus", i, created, created, LIVE, {
                "MasterLabel": label, "ApiName": label, "IsActive": True, "SortOrder": i,
                "IsClosed": closed, "IsDefault": i == 1,
            })  # fmt: skip

    def finish(self) -> dict[str, int]:
        if not self.counts.get("User"):
            self._users()
        for obj in list(self.buffers):
            self._flush(obj)
        with self.store.write() as conn:
            for obj, key in self.max_key.items():
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    (f"salesforce:{obj}", key),
                )
            # External id lookups (upsert) go through an expression index [API.md §2.4].
            xid = EXTERNAL_ID.get(self.spec.profile, "External_Account_Id__c")
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS salesforce_xid_Account_{xid}"
                f" ON records (json_extract(data, '$.{xid}'))"
                " WHERE vendor = 'salesforce' AND object = 'Account'"
            )
        self.store.set_meta(VENDOR, "profile", self.spec.profile)
        return dict(self.counts)
