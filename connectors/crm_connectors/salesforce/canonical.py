"""Salesforce's streams in the canonical model (crm_connectors.canonical).

- Account -> account: ``External_Account_Id__c``, ``Website``, ARR from ``AnnualRevenue``,
  ``Seats__c``, ``Plan__c``, ``Renewal_Date__c``; churned when ``Type`` is "Former Customer"; a
  merged-away Account (``MasterRecordId``) resolves to its master.
- Opportunity -> deal: kind from ``Type``, stage from ``IsWon``/``IsClosed``.
- Case -> ticket: closed from ``IsClosed``, pending for Working/Escalated/On Hold.
- NPS_Response__c -> nps_response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Mapper
from ..canonical import (
    Mapped,
    Parent,
    Row,
    csat,
    date,
    domain_of,
    integer,
    number,
    priority,
    ref,
    source_fields,
)

Record = Mapping[str, Any]

_SF_OPPORTUNITY_KIND = {
    "new business": "new_business",
    "renewal": "renewal",
    "existing customer - upgrade": "expansion",
    "existing customer - replacement": "renewal",
    "existing customer - downgrade": "renewal",
}


def _sf(obj: str, r: Record) -> dict[str, Any]:
    return source_fields("salesforce", obj, r["Id"], r, r.get("SystemModstamp"))


def salesforce_account(r: Record) -> list[Mapped]:
    data = _sf("Account", r)
    master = r.get("MasterRecordId")
    data |= {
        "name": r.get("Name"),
        "domain": domain_of(r.get("Website")),
        "external_id": r.get("External_Account_Id__c"),
        "arr": number(r.get("AnnualRevenue")),
        "seats": integer(r.get("Seats__c")),
        "plan": r.get("Plan__c"),
        "renewal_date": date(r.get("Renewal_Date__c")),
        "customer_since": None,
        "churned": str(r.get("Type") or "").lower() == "former customer",
        "payment_issue": None,
        "owner_ref": ref("salesforce", "User", r.get("OwnerId")),
        "merged_into": ref("salesforce", "Account", master),
    }
    rows: list[Mapped] = [Row("account", data)]
    if data["merged_into"]:  # merged away: its stale references resolve to the master
        rows.append(Parent(data["key"], data["merged_into"]))
    return rows


def salesforce_contact(r: Record) -> list[Mapped]:
    data = _sf("Contact", r)
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
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
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
        "kind": _SF_OPPORTUNITY_KIND.get(str(r.get("Type") or "").lower(), "other"),
        "amount": number(r.get("Amount")),
        "stage": "won" if won else ("lost" if closed else "open"),
        "close_date": date(r.get("CloseDate")),
        "created_at": r.get("CreatedDate"),
    }
    return [Row("deal", data)]


def salesforce_case(r: Record) -> list[Mapped]:
    data = _sf("Case", r)
    status = str(r.get("Status") or "").lower()
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("AccountId")),
        "contact_ref": ref("salesforce", "Contact", r.get("ContactId")),
        "priority": priority(r.get("Priority")),
        "status": "closed"
        if r.get("IsClosed")
        else ("pending" if status in ("working", "escalated", "on hold") else "open"),
        "opened_at": r.get("CreatedDate"),
        "closed_at": r.get("ClosedDate"),
        "csat": csat(r.get("CSAT__c")),
    }
    return [Row("ticket", data)]


def salesforce_nps(r: Record) -> list[Mapped]:
    data = _sf("NPS_Response__c", r)
    data |= {
        "account_ref": ref("salesforce", "Account", r.get("Account__c")),
        "contact_ref": ref("salesforce", "Contact", r.get("Contact__c")),
        "score": integer(r.get("Score__c")),
        "submitted_at": r.get("Submitted_At__c") or r.get("CreatedDate"),
    }
    return [Row("nps_response", data)]


#: Stream name -> mapper.
MAPPING: dict[str, Mapper] = {
    "salesforce_Account": salesforce_account,
    "salesforce_Contact": salesforce_contact,
    "salesforce_Opportunity": salesforce_opportunity,
    "salesforce_Case": salesforce_case,
    "salesforce_NPS_Response__c": salesforce_nps,
}
