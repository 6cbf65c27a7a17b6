"""The canonical model's rows, and the helpers every CRM's ``canonical.py`` maps with.

Each CRM record becomes at most one canonical row, keyed by its source (``<crm>:<object>:<id>``,
:func:`source_fields`), so a replay upserts the same row. Rows say which account they belong to
by the *source key* of that account's record in the same CRM (``account_ref``), or by the key of
a contact whose account is known (``contact_ref``); the store resolves both to one canonical
account when facts are assembled, so records may arrive in any order.

One customer may live in several CRMs. Accounts are linked by, in order: the external id the
CRMs store, then the web domain, else the record stands alone. :func:`account_key` gives that
canonical key (``ext:ACC-0000001``, ``dom:example.com``).

Associations (a CRM's account->deal/ticket/contact links) become :class:`Parent` rows: the
account of a child record that carries no account field itself.

Values the CRMs spell differently are normalised in their ``canonical.py`` and nowhere else:
deal kind and stage, ticket priority and status, dates. A value the mapping does not know
becomes ``null`` (or ``other`` for a deal kind), never an error: validation is for shapes,
mapping for meanings. The row shapes are the JSON Schemas of target-health's
``schemas/v1/*.json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .roles import Marks, flag, kind, value

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


def date(value: Any) -> str | None:
    """An ISO date (``2026-12-14``) from a date or date-time text."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    return value[:10]


def timestamp(value: Any) -> str | None:
    """A date-time text from an ISO text or unix seconds (Intercom's nested timestamps)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        when = dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc)
        return when.isoformat().replace("+00:00", "Z")
    return None


def text(value: Any) -> str | None:
    """A text value: a non-empty text stripped, a number as its digits (an id kept as a number
    field), anything else None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ref(crm: str, obj: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    return f"{crm}:{obj}:{value}"


def source_fields(crm: str, obj: str, rid: Any, record: Record, modified: Any) -> dict[str, Any]:
    return {
        "key": f"{crm}:{obj}:{rid}",
        "crm": crm,
        "deleted": bool(record.get("_sdc_deleted_at")),
        "modified": modified if isinstance(modified, str) else None,
    }


def account_facts(marks: Marks, r: Record) -> dict[str, Any]:
    """The mapped facts of an account record (crm_connectors.roles), for every CRM's accounts."""
    return {
        "external_id": text(value(r, marks, "external_id")),
        "arr": number(value(r, marks, "arr")),
        "seats": integer(value(r, marks, "seats")),
        "plan": text(value(r, marks, "plan")),
        "renewal_date": date(value(r, marks, "renewal_date")),
        "customer_since": date(value(r, marks, "customer_since")),
        "churned": flag(r, marks, "churned"),
        "payment_issue": flag(r, marks, "payment_issue"),
    }


def deal_kind(marks: Marks, r: Record, standard: str) -> str:
    """A deal's kind: the one the ``deal_kind`` mapping's values give its field's value (a
    renewals pipeline, a record type), else ``standard`` (the connector's reading of its CRM's
    standard field), or ``other`` when no field holds the role (mapped to null, deselected)."""
    if "deal_kind" not in marks:
        return "other"
    return kind(r, marks, "deal_kind") or standard


PRIORITY = {
    "low": "low",
    "medium": "medium",
    "normal": "medium",
    "high": "high",
    "urgent": "urgent",
    "critical": "urgent",
}


def priority(value: Any) -> str | None:
    return PRIORITY.get(str(value).strip().lower()) if value is not None else None


def csat(value: Any) -> int | None:
    score = integer(value)
    return score if score is not None and 1 <= score <= 5 else None


def aliases(crm: str, obj: str, merged_ids: Any, data: Mapping[str, Any]) -> list[Mapped]:
    """Records merged into this one (HubSpot ``hs_merged_object_ids``, ``"1;2"``): a stale
    reference to a merged-away id resolves to the survivor, as a parent of that id."""
    if not merged_ids:
        return []
    ids = [i.strip() for i in str(merged_ids).replace(",", ";").split(";") if i.strip()]
    return [
        Parent(f"{crm}:{obj}:{i}", str(data["key"]), deleted=bool(data["deleted"])) for i in ids
    ]
