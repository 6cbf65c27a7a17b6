"""Intercom's streams in the canonical model (crm_connectors.canonical).

- companies -> account: ``name``, ``website``; ``company_id`` (the id the workspace gives its
  companies: the cross-CRM id) and the plan's name by default, and the facts a workspace keeps
  in custom attributes of its own by ``intercom_field_mapping`` (:data:`ROLES`,
  crm_connectors.roles; ``custom_attributes.<name>``): ARR, seats, renewal date, customer
  since, churned, payment issue. Intercom has no churn marker and no company owner.
- contacts -> contact, with the first company as the account.
- conversations -> conversation: through the first contact; snoozed is pending; CSAT from
  ``conversation_rating``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import FieldMapper
from ..canonical import Mapped, Row, account_facts, csat, domain_of, ref, source_fields, timestamp
from ..roles import Marks, account_roles

Record = Mapping[str, Any]

#: On companies: the standard company id and plan; the rest where the workspace keeps it.
ROLES = account_roles("companies", external_id="company_id", plan="plan.name")


def _ic(obj: str, r: Record) -> dict[str, Any]:
    return source_fields("intercom", obj, r["id"], r, r.get("updated_at"))


def intercom_companies(marks: Marks, r: Record) -> list[Mapped]:
    data = _ic("companies", r)
    data |= {
        "name": r.get("name"),
        "domain": domain_of(r.get("website")),
        **account_facts(marks, r),
        "owner_ref": None,
        "merged_into": None,
    }
    return [Row("account", data)]


def _first_company(r: Record) -> str | None:
    companies = r.get("companies")
    items = companies.get("data") if isinstance(companies, Mapping) else None
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        return ref("intercom", "companies", items[0].get("id"))
    return None


def intercom_contacts(_marks: Marks, r: Record) -> list[Mapped]:
    data = _ic("contacts", r)
    data |= {
        "account_ref": _first_company(r),
        "email_token": r.get("email__token"),
        "title": None,
        "created_at": r.get("created_at"),
        "last_seen_at": r.get("last_seen_at"),
    }
    return [Row("contact", data)]


def intercom_conversations(_marks: Marks, r: Record) -> list[Mapped]:
    data = _ic("conversations", r)
    contacts = r.get("contacts")
    items = contacts.get("contacts") if isinstance(contacts, Mapping) else None
    contact = (
        ref("intercom", "contacts", items[0].get("id"))
        if isinstance(items, list) and items and isinstance(items[0], Mapping)
        else None
    )
    state = str(r.get("state") or "").lower()
    rating = r.get("conversation_rating")
    stats = r.get("statistics")
    closed = timestamp(stats.get("last_close_at")) if isinstance(stats, Mapping) else None
    data |= {
        "account_ref": None,  # through the contact
        "contact_ref": contact,
        "priority": "high" if r.get("priority") == "priority" else None,
        "status": {"closed": "closed", "snoozed": "pending"}.get(state, "open"),
        "opened_at": r.get("created_at"),
        "closed_at": closed if state == "closed" else None,
        "csat": csat(rating.get("rating")) if isinstance(rating, Mapping) else None,
    }
    return [Row("conversation", data)]


#: Stream name -> mapper.
MAPPING: dict[str, FieldMapper] = {
    "intercom_companies": intercom_companies,
    "intercom_contacts": intercom_contacts,
    "intercom_conversations": intercom_conversations,
}
