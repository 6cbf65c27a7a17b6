"""Zendesk's streams in the canonical model (crm_connectors.canonical).

- organizations -> account: ``external_id`` (Zendesk's own field: the cross-CRM id), the first
  of ``domain_names``, and the facts an account keeps in organization fields of its own by
  ``zendesk_field_mapping`` (:data:`ROLES`, crm_connectors.roles;
  ``organization_fields.<key>``): ARR, seats, plan, renewal date, customer since, churned,
  payment issue. Zendesk has no churn marker and no account owner.
- users -> contact, with their ``organization_id`` as the account; end users and agents alike
  (an agent belongs to no customer organization, so it joins none).
- tickets -> ticket, through the organization, else the requester: status new/open -> open,
  pending/hold -> pending, solved/closed -> closed (deleted ones are flagged); priority normal
  -> medium; closed at the metric set's ``solved_at``. CSAT from the ticket's satisfaction
  rating: Zendesk's is good or bad, kept as 5 or 1 on the canonical 1-5 scale (offered or
  unanswered: none). Task tickets (``type: task``, what write-back creates) are not support
  load and are left out.
- satisfaction_ratings: not mapped (each ticket carries its rating).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import FieldMapper
from ..canonical import Mapped, Row, account_facts, domain_of, priority, ref, source_fields
from ..roles import Marks, account_roles

Record = Mapping[str, Any]

#: On organizations: Zendesk's own external id; the rest where the account keeps it.
ROLES = account_roles("organizations", external_id="external_id")

_STATUS = {
    "new": "open", "open": "open", "pending": "pending", "hold": "pending",
    "solved": "closed", "closed": "closed",
}  # fmt: skip
_CSAT = {"good": 5, "bad": 1}


def _zd(obj: str, r: Record, modified: Any) -> dict[str, Any]:
    return source_fields("zendesk", obj, r["id"], r, modified)


def zendesk_organizations(marks: Marks, r: Record) -> list[Mapped]:
    data = _zd("organizations", r, r.get("updated_at"))
    domains = r.get("domain_names") or []
    data |= {
        "name": r.get("name"),
        "domain": domain_of(domains[0]) if isinstance(domains, list) and domains else None,
        **account_facts(marks, r),
        "owner_ref": None,
        "merged_into": None,
    }
    return [Row("account", data)]


def zendesk_users(_marks: Marks, r: Record) -> list[Mapped]:
    data = _zd("users", r, r.get("updated_at"))
    data |= {
        "account_ref": ref("zendesk", "organizations", r.get("organization_id")),
        "email_token": r.get("email__token"),
        "title": None,
        "created_at": r.get("created_at"),
        "last_seen_at": r.get("last_login_at"),
    }
    return [Row("contact", data)]


def zendesk_tickets(_marks: Marks, r: Record) -> list[Mapped]:
    if r.get("type") == "task":
        return []
    data = _zd("tickets", r, r.get("generated_timestamp") or r.get("updated_at"))
    status = _STATUS.get(str(r.get("status") or "").lower(), "open")
    metrics = r.get("metric_set") or {}
    rating = r.get("satisfaction_rating") or {}
    data |= {
        "account_ref": ref("zendesk", "organizations", r.get("organization_id")),
        "contact_ref": ref("zendesk", "users", r.get("requester_id")),
        "priority": priority(r.get("priority")),
        "status": status,
        "opened_at": r.get("created_at"),
        "closed_at": metrics.get("solved_at") if status == "closed" else None,
        "csat": _CSAT.get(str(rating.get("score") or "")) if isinstance(rating, Mapping) else None,
    }
    return [Row("ticket", data)]


#: Stream name -> mapper.
MAPPING: dict[str, FieldMapper] = {
    "zendesk_organizations": zendesk_organizations,
    "zendesk_users": zendesk_users,
    "zendesk_tickets": zendesk_tickets,
}
