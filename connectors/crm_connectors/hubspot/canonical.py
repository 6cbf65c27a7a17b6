"""HubSpot's streams in the canonical model (crm_connectors.canonical).

- companies -> account: ``name``, ``domain``, the owner (``hubspot_owner_id``), and the facts a
  portal keeps in properties of its own, by ``hubspot_field_mapping`` (:data:`ROLES`,
  crm_connectors.roles): external id, ARR, seats, plan, renewal date, customer since, churned,
  payment issue. A plain portal has none of them: ``annualrevenue`` is the company's own
  revenue, not what it pays, and ``lifecyclestage`` has no churned stage unless the portal adds
  one. Merged companies list the ids merged into them (``hs_merged_object_ids``): stale
  references to those resolve to the survivor.
- deals -> deal: the standard ``dealtype`` has ``newbusiness`` and ``existingbusiness`` only; an
  existing-business deal named as an upsell is an expansion, otherwise a renewal; a portal that
  tells renewals by their pipeline instead says so in the ``deal_kind`` mapping (its values
  win over ``dealtype``); won and lost
  from HubSpot's calculated ``hs_is_closed_won``/``hs_is_closed``, which follow each stage's
  pipeline metadata in every pipeline (a portal's own stage ids are numbers, not
  ``closedwon``); only a record without them falls back to the default pipeline's
  ``closedwon``/``closedlost``. The account comes from the associations stream.
- tickets -> ticket: the default pipeline's stages (1 new, 2 waiting on contact, 3 waiting on
  us, 4 closed); ``closed_date`` closes one whatever its stage; CSAT by the mapping (``csat``).
- feedback_submissions -> nps_response (NPS surveys only), through the contact.
- associations (company -> deal/ticket/contact) -> parents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import FieldMapper
from ..canonical import (
    Mapped,
    Parent,
    Row,
    account_facts,
    aliases,
    csat,
    date,
    deal_kind,
    domain_of,
    integer,
    number,
    priority,
    ref,
    source_fields,
)
from ..roles import Marks, Role, account_roles, value

Record = Mapping[str, Any]

#: The facts a portal keeps where it chooses (hubspot_field_mapping): on companies, and CSAT on
#: tickets; only the owner is a standard property.
ROLES = {
    **account_roles("companies"),
    "owner": Role("companies", "hubspot_owner_id"),
    "csat": Role("tickets"),
    "deal_kind": Role("deals", "dealtype", kinds=True),
}

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


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).lower()
    return True if text == "true" else False if text == "false" else None


def _hubspot_stage(r: Record) -> str:
    won, closed = _flag(r.get("hs_is_closed_won")), _flag(r.get("hs_is_closed"))
    if won is not None and closed is not None:
        return "won" if won else "lost" if closed else "open"
    text = str(r.get("dealstage") or "").lower()  # the default pipeline's stage ids
    if text == "closedwon":
        return "won"
    if text == "closedlost":
        return "lost"
    return "open"


#: HubSpot's default ticket pipeline: 1 new, 2 waiting on contact, 3 waiting on us, 4 closed.
_HUBSPOT_TICKET_STAGE = {"1": "open", "2": "pending", "3": "pending", "4": "closed"}


def hubspot_companies(marks: Marks, r: Record) -> list[Mapped]:
    data = source_fields("hubspot", "companies", r["id"], r, r.get("hs_lastmodifieddate"))
    data |= {
        "name": r.get("name"),
        "domain": domain_of(r.get("domain")),
        **account_facts(marks, r),
        "owner_ref": ref("hubspot", "owners", value(r, marks, "owner")),
        "merged_into": None,  # HubSpot lists only survivors (hs_merged_object_ids)
    }
    return [
        Row("account", data),
        *aliases("hubspot", "companies", r.get("hs_merged_object_ids"), data),
    ]


def hubspot_contacts(marks: Marks, r: Record) -> list[Mapped]:
    data = source_fields("hubspot", "contacts", r["id"], r, r.get("lastmodifieddate"))
    data |= {
        "account_ref": ref("hubspot", "companies", r.get("associatedcompanyid")),
        "email_token": r.get("email__token"),
        "title": r.get("jobtitle"),
        "created_at": r.get("createdate"),
        "last_seen_at": None,
    }
    return [Row("contact", data)]


def hubspot_deals(marks: Marks, r: Record) -> list[Mapped]:
    data = source_fields("hubspot", "deals", r["id"], r, r.get("hs_lastmodifieddate"))
    data |= {
        "account_ref": None,  # from the associations stream
        "kind": deal_kind(marks, r, _hubspot_deal_kind(r.get("dealtype"), r.get("dealname"))),
        "amount": number(r.get("amount")),
        "stage": _hubspot_stage(r),
        "close_date": date(r.get("closedate")),
        "created_at": r.get("createdate"),
    }
    return [Row("deal", data)]


def hubspot_tickets(marks: Marks, r: Record) -> list[Mapped]:
    data = source_fields("hubspot", "tickets", r["id"], r, r.get("hs_lastmodifieddate"))
    closed = r.get("closed_date")
    status = _HUBSPOT_TICKET_STAGE.get(str(r.get("hs_pipeline_stage")), "open")
    data |= {
        "account_ref": None,  # from the associations stream
        "contact_ref": None,
        "priority": priority(r.get("hs_ticket_priority")),
        "status": "closed" if closed else status,
        "opened_at": r.get("createdate") or r.get("createdAt"),
        "closed_at": closed,
        "csat": csat(value(r, marks, "csat")),
    }
    return [Row("ticket", data)]


def hubspot_feedback_submissions(marks: Marks, r: Record) -> list[Mapped]:
    if str(r.get("hs_survey_type") or "NPS").upper() != "NPS":
        return []
    data = source_fields(
        "hubspot", "feedback_submissions", r["id"], r, r.get("hs_lastmodifieddate")
    )
    data |= {
        "account_ref": None,  # through the contact
        "contact_ref": ref("hubspot", "contacts", r.get("hs_contact_id")),
        "score": integer(r.get("hs_response_value")),
        "submitted_at": r.get("hs_submission_timestamp") or r.get("createdate"),
    }
    return [Row("nps_response", data)]


def hubspot_associations(marks: Marks, r: Record) -> list[Mapped]:
    if r.get("from_object") != "companies":
        return []
    child = ref("hubspot", str(r.get("to_object")), r.get("to_id"))
    company = ref("hubspot", "companies", r.get("from_id"))
    if child is None or company is None:
        return []
    return [Parent(child, company, deleted=bool(r.get("_sdc_deleted_at")))]


#: Stream name -> mapper.
MAPPING: dict[str, FieldMapper] = {
    "hubspot_companies": hubspot_companies,
    "hubspot_contacts": hubspot_contacts,
    "hubspot_deals": hubspot_deals,
    "hubspot_tickets": hubspot_tickets,
    "hubspot_feedback_submissions": hubspot_feedback_submissions,
    "hubspot_associations": hubspot_associations,
}
