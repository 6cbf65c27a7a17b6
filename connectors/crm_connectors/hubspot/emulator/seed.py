"""Map world bundles into HubSpot records (companies, contacts, deals, tickets,
feedback_submissions), associations, owners and the portal's custom property definitions.

Ids are deterministic (``schema.record_id(object, key)``), rows are buffered and written in large
batches, and property values are stored as the strings HubSpot returns: numbers as ``"123.45"``,
datetime properties as ISO-8601 with milliseconds, date properties as ``YYYY-MM-DD``
[API.md §1.2].
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import orjson

from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED, Store
from crm_connectors.sandbox.world import OWNERS, Account, Bundle, Deal, WorldSpec

from .model import (
    ASSOCIATION_TYPE_IDS,
    RENEWAL_STAGES,
    RENEWALS_PIPELINE,
    VENDOR,
    builtin_groups,
    id_counter,
    iso_ms,
    more_standard_properties,
    pipeline,
    realistic_custom_properties,
    record_id,
    seeded_custom_properties,
)

BATCH = 10_000
ASSOC_BATCH = 50_000
#: Archived HubSpot records are few; a partial index keeps ``?archived=true`` lists fast.
ARCHIVED_INDEX = (
    "CREATE INDEX IF NOT EXISTS hubspot_archived ON records (object, id)"
    " WHERE vendor = 'hubspot' AND state = 1"
)
OWNER_BASE = 60_000_000
_STATES = {"archived": ARCHIVED, "deleted": PURGED, "merged": MERGED}
_STAGE = {"won": "closedwon", "lost": "closedlost", "open": "contractsent"}
_DEALTYPE = {"new_business": "newbusiness", "renewal": "existingbusiness",
             "expansion": "existingbusiness"}  # fmt: skip
_TICKET_STAGE = {"open": "1", "pending": "2", "closed": "4"}
#: Association type ids as stored (strings), looked up once per pair.
_KINDS = {pair: str(type_id) for pair, type_id in ASSOCIATION_TYPE_IDS.items()}


@functools.lru_cache(maxsize=16_384)
def _close_date(day: str) -> str:
    return iso_ms(day_ms(day))


@functools.lru_cache(maxsize=64)
def owner_id(index: int) -> str:
    return str(OWNER_BASE + index + 1)


def number(value: float | int) -> str:
    """HubSpot number values come back as plain decimal strings ("24000" / "24000.5")."""
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(round(f, 2))


@functools.lru_cache(maxsize=16_384)
def day_ms(day: str) -> int:
    d = dt.date.fromisoformat(day)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()) * 1000


def owners(spec: WorldSpec) -> list[dict[str, Any]]:
    created = iso_ms(spec.anchor_ms - 2_000 * 86_400_000)
    return [
        {
            "id": owner_id(i),
            "email": email,
            "firstName": first,
            "lastName": last,
            "userId": 9_000_000 + i + 1,
            "userIdIncludingInactive": 9_000_000 + i + 1,
            "type": "PERSON",
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
            "teams": [],
        }
        for i, (first, last, email) in enumerate(OWNERS)
    ]


class Seeder:
    def __init__(self, store: Store, spec: WorldSpec) -> None:
        self.store = store
        self.spec = spec
        self.rows: dict[str, list[tuple[str, int, int, int, str]]] = {}
        self.assoc: list[tuple[str, str, str, str, str, str]] = []
        self.counts: dict[str, int] = {}
        self.max_key: dict[str, int] = {}

    # -- buffering ------------------------------------------------------------------------------

    def _row(
        self, obj: str, key: int, created: int, updated: int, props: dict[str, Any], state: int,
        merged_into: str | None = None,
    ) -> str:  # fmt: skip
        rid = record_id(obj, key)
        data: dict[str, Any] = {"properties": {k: v for k, v in props.items() if v is not None}}
        if state == ARCHIVED:
            data["archivedAt"] = iso_ms(updated)
        if merged_into is not None:
            data["mergedInto"] = merged_into
        rows = self.rows.setdefault(obj, [])
        rows.append((rid, created, updated, state, orjson.dumps(data).decode()))
        if key > self.max_key.get(obj, 0):
            self.max_key[obj] = key
        if len(rows) >= BATCH:
            self._flush(obj)
        return rid

    def _link(self, a_obj: str, a_id: str, b_obj: str, b_id: str) -> None:
        assoc = self.assoc
        assoc.append((VENDOR, a_obj, a_id, b_obj, b_id, _KINDS[(a_obj, b_obj)]))
        assoc.append((VENDOR, b_obj, b_id, a_obj, a_id, _KINDS[(b_obj, a_obj)]))
        if len(assoc) >= ASSOC_BATCH:
            self._flush_assoc()

    def _flush(self, obj: str) -> None:
        rows = self.rows.get(obj)
        if rows:
            self.counts[obj] = self.counts.get(obj, 0) + self.store.insert_many(VENDOR, obj, rows)
            rows.clear()

    def _flush_assoc(self) -> None:
        if self.assoc:
            with self.store.write() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO associations"
                    " (vendor, from_type, from_id, to_type, to_id, kind) VALUES (?, ?, ?, ?, ?, ?)",
                    self.assoc,
                )
            self.assoc.clear()

    # -- mapping --------------------------------------------------------------------------------

    def add(self, bundle: Bundle) -> None:
        a = bundle.account
        if "hubspot" not in a.crms:
            return
        life = a.lifecycle.get("hubspot")
        state = _STATES.get(life or "", LIVE)
        merged_into = (
            record_id("companies", a.merged_into)
            if state == MERGED and a.merged_into is not None
            else None
        )
        company_id = self._row(
            "companies", a.key, a.created_ms, a.updated_ms,
            {
                "name": a.name,
                "domain": a.domain,
                "industry": a.industry,
                "country": a.country,
                "city": a.city,
                "phone": a.phone,
                "numberofemployees": None if a.employees is None else str(a.employees),
                "hubspot_owner_id": owner_id(a.owner),
                "description": a.description,
                **self._company_facts(a),
            },
            state, merged_into,
        )  # fmt: skip
        contact_ids: dict[int, str] = {}
        emails: dict[int, str | None] = {}
        for c in bundle.contacts:
            if "hubspot" not in c.crms:
                continue
            c_state = _STATES.get(c.lifecycle.get("hubspot", ""), LIVE)
            c_merged = (
                record_id("contacts", c.merged_into)
                if c_state == MERGED and c.merged_into is not None
                else None
            )
            cid = self._row(
                "contacts", c.key, c.created_ms, c.updated_ms,
                {
                    "firstname": c.first_name,
                    "lastname": c.last_name,
                    "email": c.email,
                    "phone": c.phone,
                    "jobtitle": c.title,
                    "company": a.name,
                    "associatedcompanyid": company_id,
                    "lifecyclestage": "customer",
                },
                c_state, c_merged,
            )  # fmt: skip
            contact_ids[c.key] = cid
            emails[c.key] = c.email
            self._link("companies", company_id, "contacts", cid)
        for d in bundle.deals:
            if d.crm != "hubspot":
                continue
            did = self._row(
                "deals", d.key, d.created_ms, d.updated_ms,
                {
                    "dealname": d.name,
                    "amount": number(d.amount),
                    **self._deal_stage(d),
                    "closedate": _close_date(d.close_date),
                    "dealtype": self._dealtype(d),
                    "hubspot_owner_id": owner_id(a.owner),
                },
                LIVE,
            )  # fmt: skip
            self._link("companies", company_id, "deals", did)
        for t in bundle.tickets:
            if t.crm != "hubspot":
                continue
            tid = self._row(
                "tickets", t.key, t.created_ms, t.updated_ms,
                {
                    "subject": t.subject,
                    "content": t.description,
                    "hs_pipeline": "0",
                    "hs_pipeline_stage": _TICKET_STAGE[t.status],
                    "hs_ticket_priority": t.priority.upper(),
                    "closed_date": None if t.closed_ms is None else iso_ms(t.closed_ms),
                    **({} if not self.spec.custom_fields or t.csat is None else
                       {self._csat: str(t.csat)}),
                    "hubspot_owner_id": owner_id(a.owner),
                },
                LIVE,
            )  # fmt: skip
            self._link("companies", company_id, "tickets", tid)
            if t.contact_key in contact_ids:
                self._link("contacts", contact_ids[t.contact_key], "tickets", tid)
        for n in bundle.nps:
            if n.crm != "hubspot":
                continue
            sentiment = "Promoter" if n.score >= 9 else "Passive" if n.score >= 7 else "Detractor"
            self._row(
                "feedback_submissions", n.key, n.submitted_ms, n.submitted_ms,
                {
                    "hs_survey_type": "NPS",
                    "hs_survey_name": "Customer NPS",
                    "hs_response_value": str(n.score),
                    "hs_content": n.comment,
                    "hs_sentiment": sentiment,
                    "hs_submission_timestamp": iso_ms(n.submitted_ms),
                    "hs_contact_id": contact_ids.get(n.contact_key or -1),
                    "hs_contact_email_address": emails.get(n.contact_key or -1),
                },
                LIVE,
            )  # fmt: skip

    @property
    def _csat(self) -> str:
        return "satisfaction_score" if self.spec.realistic else "csat"

    def _company_facts(self, a: Account) -> dict[str, Any]:
        """What the portal keeps of an account's subscription, where its profile keeps it."""
        churned = a.label == "churned"
        if self.spec.realistic:  # its own names; annualrevenue is the company's own revenue
            return {
                "annualrevenue": None if a.employees is None else number(a.employees * 150_000),
                "lifecyclestage": "customer",
                "website": f"https://www.{a.domain}" if a.domain else None,
                "customer_id": a.external_id,
                "arr_usd": number(a.arr),
                "licensed_seats": str(a.seats),
                "subscription_tier": a.plan,
                "contract_renewal_date": a.renewal_date,
                "became_customer_on": a.customer_since,
                "account_status": "churned" if churned else "active",
            }
        if not self.spec.custom_fields:  # a plain portal: no property of its own
            return {"annualrevenue": number(a.arr), "lifecyclestage": "customer"}
        return {
            "annualrevenue": number(a.arr),  # this portal keeps the subscription ARR there
            "lifecyclestage": "other" if churned else "customer",
            "external_account_id": a.external_id,
            "seats": str(a.seats),
            "renewal_date": a.renewal_date,
            "plan": a.plan,
            "customer_since": a.customer_since,
        }

    def _renews_in_pipeline(self, d: Deal) -> bool:
        """The realistic portal runs its renewals in a pipeline of its own and, as many portals
        do, leaves their deal type empty: the pipeline says what they are."""
        return self.spec.realistic and d.kind == "renewal"

    def _dealtype(self, d: Deal) -> str | None:
        return None if self._renews_in_pipeline(d) else _DEALTYPE.get(d.kind, "existingbusiness")

    def _deal_stage(self, d: Deal) -> dict[str, str]:
        """A deal's pipeline and stage: a realistic portal's renewals are in its Renewals
        pipeline, with numeric stage ids."""
        if self._renews_in_pipeline(d):
            stage = {"won": "31415929", "lost": "31415930"}.get(d.stage, "31415928")
            return {"pipeline": RENEWALS_PIPELINE, "dealstage": stage}
        return {"pipeline": "default", "dealstage": _STAGE[d.stage]}

    def finish(self) -> dict[str, int]:
        for obj in list(self.rows):
            self._flush(obj)
        self._flush_assoc()
        with self.store.write() as conn:
            conn.execute(ARCHIVED_INDEX)
            for obj, key in self.max_key.items():
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    (id_counter(obj), key),
                )
        if self.spec.realistic:
            seeded, more = realistic_custom_properties(), more_standard_properties()
            renewals = pipeline(RENEWALS_PIPELINE, "Renewals", list(RENEWAL_STAGES), order=1)
            self.store.set_meta(VENDOR, "pipelines", {"deals": [renewals]})
        else:
            seeded, more = seeded_custom_properties() if self.spec.custom_fields else {}, {}
        for name, defs in (("custom_properties", seeded), ("standard_properties", more)):
            self.store.set_meta(
                VENDOR, name, {obj: {p["name"]: p for p in ps} for obj, ps in defs.items()}
            )
        self.store.set_meta(
            VENDOR,
            "property_groups",
            {obj: {g["name"]: g for g in groups} for obj, groups in builtin_groups().items()},
        )
        self.store.set_meta(VENDOR, "owners", owners(self.spec))
        return dict(self.counts)
