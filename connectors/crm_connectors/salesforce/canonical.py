"""Salesforce's streams in the canonical model (crm_connectors.canonical).

- Account -> account: ``Name``, ``Website``, ``OwnerId``, and the facts an org keeps in fields
  of its own, by ``salesforce_field_mapping`` (:data:`ROLES`, crm_connectors.roles): external
  id, ARR, seats, plan, renewal date, customer since, churned, payment issue. A plain org has
  none of them (``AnnualRevenue`` is the company's own revenue; the standard ``Type`` picklist
  has no former-customer value unless the org adds one). A merged-away Account
  (``MasterRecordId``) resolves to its master.
- Opportunity -> deal: kind from ``Type`` (a plain org's four values, and the Renewal/New
  Business values orgs add), unless the ``deal_kind`` mapping says it from another field's
  values (a record type, say) first; won and lost from ``IsWon``/``IsClosed``, which
  Salesforce derives from the org's own OpportunityStage records, so they hold whatever the
  stages are called (API.md §2.13).
- Case -> ticket: closed from ``IsClosed`` (derived from the org's CaseStatus records), pending
  for the default Working/Escalated and statuses that wait (On Hold, Waiting on ...); CSAT by
  the mapping.
- NPS: Salesforce has no standard survey object; the object the mapping names
  (``nps_object``, with ``nps_score`` and where the account, contact and time are) ->
  nps_response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import EntityMapper, FieldMapper
from ..canonical import (
    Mapped,
    Parent,
    Row,
    account_facts,
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

#: The facts an org keeps where it chooses (salesforce_field_mapping): on Account, CSAT on
#: Case, and an NPS object of its own; only the owner is a standard field.
ROLES = {
    **account_roles("Account"),
    "owner": Role("Account", "OwnerId"),
    "csat": Role("Case"),
    "deal_kind": Role("Opportunity", "Type", kinds=True),
    "nps_object": Role("", names_object=True),
    "nps_score": Role("nps_object", required=True),
    "nps_account": Role("nps_object"),
    "nps_contact": Role("nps_object"),
    "nps_submitted_at": Role("nps_object"),
}

_SF_OPPORTUNITY_KIND = {
    "new customer": "new_business",  # a plain org's value [API.md §2.13]
    "new business": "new_business",
    "renewal": "renewal",
    "existing customer - upgrade": "expansion",
    "existing customer - replacement": "renewal",
    "existing customer - downgrade": "renewal",
}


def _sf(obj: str, r: Record) -> dict[str, Any]:
    return source_fields("salesforce", obj, r["Id"], r, r.get("SystemModstamp"))


def salesforce_account(marks: Marks, r: Record) -> list[Mapped]:
    data = _sf("Account", r)
    master = r.get("MasterRecordId")
    data |= {
        "name": r.get("Name"),
        "domain": domain_of(r.get("Website")),
        **account_facts(marks, r),
        "owner_ref": ref("salesforce", "User", value(r, marks, "owner")),
        "merged_into": ref("salesforce", "Account", master),
    }
    rows: list[Mapped] = [Row("account", data)]
    if data["merged_into"]:  # merged away: its stale references resolve to the master
        rows.append(Parent(data["key"], data["merged_into"]))
    return rows


def salesforce_contact(marks: Marks, r: Record) -> list[Mapped]:
    data = _sf("Contact", r)
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
        "email_token": r.get("Email__token"),
        "title": r.get("Title"),
        "created_at": r.get("CreatedDate"),
        "last_seen_at": None,
    }
    return [Row("contact", data)]


def salesforce_opportunity(marks: Marks, r: Record) -> list[Mapped]:
    data = _sf("Opportunity", r)
    won, closed = r.get("IsWon"), r.get("IsClosed")
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
        "kind": deal_kind(
            marks, r, _SF_OPPORTUNITY_KIND.get(str(r.get("Type") or "").lower(), "other")
        ),
        "amount": number(r.get("Amount")),
        "stage": "won" if won else ("lost" if closed else "open"),
        "close_date": date(r.get("CloseDate")),
        "created_at": r.get("CreatedDate"),
    }
    return [Row("deal", data)]


def salesforce_case(marks: Marks, r: Record) -> list[Mapped]:
    data = _sf("Case", r)
    status = str(r.get("Status") or "").lower()
    waiting = status in ("working", "escalated", "on hold") or status.startswith("waiting")
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
        "contact_ref": ref("salesforce", "Contact", r.get("ContactId")),
        "priority": priority(r.get("Priority")),
        "status": "closed" if r.get("IsClosed") else ("pending" if waiting else "open"),
        "opened_at": r.get("CreatedDate"),
        "closed_at": r.get("ClosedDate"),
        "csat": csat(value(r, marks, "csat")),
    }
    return [Row("ticket", data)]


def salesforce_nps(obj: str, marks: Marks, r: Record) -> list[Mapped]:
    """A record of ``obj``, the object ``nps_object`` names."""
    data = _sf(obj, r)
    data |= {
        "account_ref": ref("salesforce", "Account", value(r, marks, "nps_account")),
        "contact_ref": ref("salesforce", "Contact", value(r, marks, "nps_contact")),
        "score": integer(value(r, marks, "nps_score")),
        "submitted_at": value(r, marks, "nps_submitted_at") or r.get("CreatedDate"),
    }
    return [Row("nps_response", data)]


#: Stream name -> mapper.
MAPPING: dict[str, FieldMapper] = {
    "salesforce_Account": salesforce_account,
    "salesforce_Contact": salesforce_contact,
    "salesforce_Opportunity": salesforce_opportunity,
    "salesforce_Case": salesforce_case,
}
#: Streams the field mapping names, by the entity it marks them with.
ENTITY_MAPPING: dict[str, EntityMapper] = {"nps": salesforce_nps}
