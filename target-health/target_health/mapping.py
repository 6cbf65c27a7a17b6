"""From tap-crm's streams to the canonical model (schemas/v1/*.json).

Each CRM record becomes at most one canonical row, keyed by its source (``hubspot:deals:123``),
so a replay upserts the same row. Rows say which account they belong to by the *source key* of
that account's record in the same CRM (``account_ref``), or by the key of a contact whose
account is known (``contact_ref``); the store resolves both to one canonical account when facts
are assembled, so records may arrive in any order.

One customer may live in several CRMs. Accounts are linked by, in order: the external id every
CRM stores (``ACC-0000001`` in HubSpot ``external_account_id``, Salesforce
``External_Account_Id__c``, Intercom ``company_id``), then the web domain, else the record stands
alone. :func:`account_key` gives that canonical key (``ext:ACC-0000001``, ``dom:example.com``).

Associations (HubSpot's company->deal/ticket/contact rows) become *parents*: the account of a
child record that carries no company field itself.

Values the CRMs spell differently are normalised here and nowhere else: deal kind and stage,
ticket priority and status, dates. A value the mapping does not know becomes ``null`` (or
``other`` for a deal kind), never an error: validation is for shapes, mapping for meanings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Record = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    """One canonical row: its entity (account, deal...) and its data (the entity's schema)."""

    entity: str
    data: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.data["key"])


@dataclass(frozen=True, slots=True)
class Parent:
    """``child`` (a source key) belongs to the account record ``account_ref``; ``deleted`` when
    the association is gone."""

    child: str
    account_ref: str
    deleted: bool = False


Mapped = Row | Parent


def domain_of(value: Any) -> str | None:
    """``https://www.Example.com/x`` -> ``example.com``; None for nothing usable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    host = host.removeprefix("www.")
    return host or None


def account_key(external_id: Any, domain: Any, source_key: str) -> str:
    """The canonical account key: ``ext:<external id>``, else ``dom:<domain>``, else the source."""
    if isinstance(external_id, str) and external_id.strip():
        return f"ext:{external_id.strip()}"
    host = domain_of(domain)
    return f"dom:{host}" if host else source_key


def _date(value: Any) -> str | None:
    """An ISO date (``2026-12-14``) from a date or date-time text."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    return value[:10]


def _timestamp(value: Any) -> str | None:
    """A date-time text from an ISO text or unix seconds (Intercom's nested timestamps)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        when = dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc)
        return when.isoformat().replace("+00:00", "Z")
    return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ref(crm: str, obj: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    return f"{crm}:{obj}:{value}"


def _base(crm: str, obj: str, rid: Any, record: Record, modified: Any) -> dict[str, Any]:
    return {
        "key": f"{crm}:{obj}:{rid}",
        "crm": crm,
        "deleted": bool(record.get("_sdc_deleted_at")),
        "modified": modified if isinstance(modified, str) else None,
    }


_PRIORITY = {
    "low": "low",
    "medium": "medium",
    "normal": "medium",
    "high": "high",
    "urgent": "urgent",
    "critical": "urgent",
}


def _priority(value: Any) -> str | None:
    return _PRIORITY.get(str(value).strip().lower()) if value is not None else None


def _csat(value: Any) -> int | None:
    score = _int(value)
    return score if score is not None and 1 <= score <= 5 else None


# -- HubSpot -------------------------------------------------------------------------------------

#: HubSpot's standard dealtype has newbusiness and existingbusiness only; an existing-business
#: deal named as an upsell is an expansion, otherwise a renewal.
_EXPANSION_WORDS = ("expansion", "upsell", "upgrade", "add-on", "addon")


def _hubspot_deal_kind(dealtype: Any, name: Any) -> str:
    kind = str(dealtype or "").lower()
    if kind == "newbusiness":
        return "new_business"
    if kind == "existingbusiness":
        text = str(name or "").lower()
        return "expansion" if any(w in text for w in _EXPANSION_WORDS) else "renewal"
    return "other"


def _hubspot_stage(stage: Any) -> str:
    text = str(stage or "").lower()
    if text == "closedwon":
        return "won"
    if text == "closedlost":
        return "lost"
    return "open"


#: HubSpot's default ticket pipeline: 1 new, 2 waiting on contact, 3 waiting on us, 4 closed.
_HUBSPOT_TICKET_STAGE = {"1": "open", "2": "pending", "3": "pending", "4": "closed"}


def hubspot_companies(r: Record) -> list[Mapped]:
    data = _base("hubspot", "companies", r["id"], r, r.get("hs_lastmodifieddate"))
    data |= {
        "name": r.get("name"),
        "domain": domain_of(r.get("domain")),
        "external_id": r.get("external_account_id"),
        "arr": _num(r.get("annualrevenue")),
        "seats": _int(r.get("seats")),
        "plan": r.get("plan"),
        "renewal_date": _date(r.get("renewal_date")),
        "customer_since": _date(r.get("customer_since")),
        "churned": str(r.get("lifecyclestage") or "").lower() in ("other", "former_customer"),
        "payment_issue": None,
        "owner_ref": _ref("hubspot", "owners", r.get("hubspot_owner_id")),
        "merged_into": None,  # HubSpot lists only survivors (hs_merged_object_ids)
    }
    return [
        Row("account", data),
        *_aliases("hubspot", "companies", r.get("hs_merged_object_ids"), data),
    ]


def _aliases(crm: str, obj: str, merged_ids: Any, data: Mapping[str, Any]) -> list[Mapped]:
    """Records merged into this one (HubSpot ``hs_merged_object_ids``, ``"1;2"``): a stale
    reference to a merged-away id resolves to the survivor, as a parent of that id."""
    if not merged_ids:
        return []
    ids = [i.strip() for i in str(merged_ids).replace(",", ";").split(";") if i.strip()]
    return [
        Parent(f"{crm}:{obj}:{i}", str(data["key"]), deleted=bool(data["deleted"])) for i in ids
    ]


def hubspot_contacts(r: Record) -> list[Mapped]:
    data = _base("hubspot", "contacts", r["id"], r, r.get("lastmodifieddate"))
    data |= {
        "account_ref": _ref("hubspot", "companies", r.get("associatedcompanyid")),
        "email_token": r.get("email__token"),
        "title": r.get("jobtitle"),
        "created_at": r.get("createdate"),
        "last_seen_at": None,
    }
    return [Row("contact", data)]


def hubspot_deals(r: Record) -> list[Mapped]:
    data = _base("hubspot", "deals", r["id"], r, r.get("hs_lastmodifieddate"))
    data |= {
        "account_ref": None,  # from the associations stream
        "kind": _hubspot_deal_kind(r.get("dealtype"), r.get("dealname")),
        "amount": _num(r.get("amount")),
        "stage": _hubspot_stage(r.get("dealstage")),
        "close_date": _date(r.get("closedate")),
        "created_at": r.get("createdate"),
    }
    return [Row("deal", data)]


def hubspot_tickets(r: Record) -> list[Mapped]:
    data = _base("hubspot", "tickets", r["id"], r, r.get("hs_lastmodifieddate"))
    closed = r.get("closed_date")
    status = _HUBSPOT_TICKET_STAGE.get(str(r.get("hs_pipeline_stage")), "open")
    data |= {
        "account_ref": None,  # from the associations stream
        "contact_ref": None,
        "priority": _priority(r.get("hs_ticket_priority")),
        "status": "closed" if closed else status,
        "opened_at": r.get("createdate") or r.get("createdAt"),
        "closed_at": closed,
        "csat": _csat(r.get("csat")),
    }
    return [Row("ticket", data)]


def hubspot_feedback_submissions(r: Record) -> list[Mapped]:
    if str(r.get("hs_survey_type") or "NPS").upper() != "NPS":
        return []
    data = _base("hubspot", "feedback_submissions", r["id"], r, r.get("hs_lastmodifieddate"))
    data |= {
        "account_ref": None,  # through the contact
        "contact_ref": _ref("hubspot", "contacts", r.get("hs_contact_id")),
        "score": _int(r.get("hs_response_value")),
        "submitted_at": r.get("hs_submission_timestamp") or r.get("createdate"),
    }
    return [Row("nps_response", data)]


def hubspot_associations(r: Record) -> list[Mapped]:
    if r.get("from_object") != "companies":
        return []
    child = _ref("hubspot", str(r.get("to_object")), r.get("to_id"))
    company = _ref("hubspot", "companies", r.get("from_id"))
    if child is None or company is None:
        return []
    return [Parent(child, company, deleted=bool(r.get("_sdc_deleted_at")))]


# -- Salesforce ----------------------------------------------------------------------------------

_SF_OPPORTUNITY_KIND = {
    "new business": "new_business",
    "renewal": "renewal",
    "existing customer - upgrade": "expansion",
    "existing customer - replacement": "renewal",
    "existing customer - downgrade": "renewal",
}


def _sf(obj: str, r: Record) -> dict[str, Any]:
    return _base("salesforce", obj, r["Id"], r, r.get("SystemModstamp"))


def salesforce_account(r: Record) -> list[Mapped]:
    data = _sf("Account", r)
    master = r.get("MasterRecordId")
    data |= {
        "name": r.get("Name"),
        "domain": domain_of(r.get("Website")),
        "external_id": r.get("External_Account_Id__c"),
        "arr": _num(r.get("AnnualRevenue")),
        "seats": _int(r.get("Seats__c")),
        "plan": r.get("Plan__c"),
        "renewal_date": _date(r.get("Renewal_Date__c")),
        "customer_since": None,
        "churned": str(r.get("Type") or "").lower() == "former customer",
        "payment_issue": None,
        "owner_ref": _ref("salesforce", "User", r.get("OwnerId")),
        "merged_into": _ref("salesforce", "Account", master),
    }
    rows: list[Mapped] = [Row("account", data)]
    if data["merged_into"]:  # merged away: its stale references resolve to the master
        rows.append(Parent(data["key"], data["merged_into"]))
    return rows


def salesforce_contact(r: Record) -> list[Mapped]:
    data = _sf("Contact", r)
    data |= {
        "account_ref": _ref("salesforce", "Account", r.get("AccountId")),
        "email_token": r.get("Email__token"),
        "title": r.get("Title"),
        "created_at": r.get("CreatedDate"),
        "last_seen_at": None,
    }
    return [Row("contact", data)]


def salesforce_opportunity(r: Record) -> list[Mapped]:
    data = _sf("Opportunity", r)
    won, closed = r.get("IsWon"), r.get("IsClosed")
    data |= {
        "account_ref": _ref("salesforce", "Account", r.get("AccountId")),
        "kind": _SF_OPPORTUNITY_KIND.get(str(r.get("Type") or "").lower(), "other"),
        "amount": _num(r.get("Amount")),
        "stage": "won" if won else ("lost" if closed else "open"),
        "close_date": _date(r.get("CloseDate")),
        "created_at": r.get("CreatedDate"),
    }
    return [Row("deal", data)]


def salesforce_case(r: Record) -> list[Mapped]:
    data = _sf("Case", r)
    status = str(r.get("Status") or "").lower()
    data |= {
        "account_ref": _ref("salesforce", "Account", r.get("AccountId")),
        "contact_ref": _ref("salesforce", "Contact", r.get("ContactId")),
        "priority": _priority(r.get("Priority")),
        "status": "closed"
        if r.get("IsClosed")
        else ("pending" if status in ("working", "escalated", "on hold") else "open"),
        "opened_at": r.get("CreatedDate"),
        "closed_at": r.get("ClosedDate"),
        "csat": _csat(r.get("CSAT__c")),
    }
    return [Row("ticket", data)]


def salesforce_nps(r: Record) -> list[Mapped]:
    data = _sf("NPS_Response__c", r)
    data |= {
        "account_ref": _ref("salesforce", "Account", r.get("Account__c")),
        "contact_ref": _ref("salesforce", "Contact", r.get("Contact__c")),
        "score": _int(r.get("Score__c")),
        "submitted_at": r.get("Submitted_At__c") or r.get("CreatedDate"),
    }
    return [Row("nps_response", data)]


# -- Intercom ------------------------------------------------------------------------------------


def _ic(obj: str, r: Record) -> dict[str, Any]:
    return _base("intercom", obj, r["id"], r, r.get("updated_at"))


def intercom_companies(r: Record) -> list[Mapped]:
    data = _ic("companies", r)
    custom = r.get("custom_attributes") or {}
    plan = r.get("plan")
    data |= {
        "name": r.get("name"),
        "domain": domain_of(r.get("website")),
        "external_id": r.get("company_id"),
        "arr": _num(custom.get("arr")),
        "seats": _int(custom.get("seats")),
        "plan": plan.get("name") if isinstance(plan, Mapping) else None,
        "renewal_date": _date(custom.get("renewal_date")),
        "customer_since": _date(custom.get("customer_since")),
        "churned": None,
        "payment_issue": custom.get("payment_issue")
        if isinstance(custom.get("payment_issue"), bool)
        else None,
        "owner_ref": None,
        "merged_into": None,
    }
    return [Row("account", data)]


def _first_company(r: Record) -> str | None:
    companies = r.get("companies")
    items = companies.get("data") if isinstance(companies, Mapping) else None
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        return _ref("intercom", "companies", items[0].get("id"))
    return None


def intercom_contacts(r: Record) -> list[Mapped]:
    data = _ic("contacts", r)
    data |= {
        "account_ref": _first_company(r),
        "email_token": r.get("email__token"),
        "title": None,
        "created_at": r.get("created_at"),
        "last_seen_at": r.get("last_seen_at"),
    }
    return [Row("contact", data)]


def intercom_conversations(r: Record) -> list[Mapped]:
    data = _ic("conversations", r)
    contacts = r.get("contacts")
    items = contacts.get("contacts") if isinstance(contacts, Mapping) else None
    contact = (
        _ref("intercom", "contacts", items[0].get("id"))
        if isinstance(items, list) and items and isinstance(items[0], Mapping)
        else None
    )
    state = str(r.get("state") or "").lower()
    rating = r.get("conversation_rating")
    stats = r.get("statistics")
    closed = _timestamp(stats.get("last_close_at")) if isinstance(stats, Mapping) else None
    data |= {
        "account_ref": None,  # through the contact
        "contact_ref": contact,
        "priority": "high" if r.get("priority") == "priority" else None,
        "status": {"closed": "closed", "snoozed": "pending"}.get(state, "open"),
        "opened_at": r.get("created_at"),
        "closed_at": closed if state == "closed" else None,
        "csat": _csat(rating.get("rating")) if isinstance(rating, Mapping) else None,
    }
    return [Row("conversation", data)]


# -- product usage (any source: a CSV tap, a warehouse tap...) -----------------------------------


def usage(r: Record) -> list[Mapped]:
    ref = account_key(r.get("account_external_id"), r.get("domain"), "")
    month = _date(r.get("month"))
    data = {
        "key": f"usage:{ref}:{month}",
        "crm": "usage",
        "deleted": bool(r.get("_sdc_deleted_at")),
        "modified": None,
        "account_ref": ref,
        "month": month,
        "active_users": _int(r.get("active_users")),
        "seats": _int(r.get("seats")),
        "logins": _int(r.get("logins")),
        "features_adopted": _int(r.get("features_adopted")),
    }
    return [Row("usage", data)]


#: Stream name -> mapper. Streams not listed here are accepted and counted, not stored.
MAPPERS: dict[str, Callable[[Record], list[Mapped]]] = {
    "hubspot_companies": hubspot_companies,
    "hubspot_contacts": hubspot_contacts,
    "hubspot_deals": hubspot_deals,
    "hubspot_tickets": hubspot_tickets,
    "hubspot_feedback_submissions": hubspot_feedback_submissions,
    "hubspot_associations": hubspot_associations,
    "salesforce_Account": salesforce_account,
    "salesforce_Contact": salesforce_contact,
    "salesforce_Opportunity": salesforce_opportunity,
    "salesforce_Case": salesforce_case,
    "salesforce_NPS_Response__c": salesforce_nps,
    "intercom_companies": intercom_companies,
    "intercom_contacts": intercom_contacts,
    "intercom_conversations": intercom_conversations,
    "usage": usage,
}
