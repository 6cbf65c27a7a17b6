"""The conformance kit's hooks for HubSpot (crm_connectors.testing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ...sandbox.emulators import Expected, KitHooks
from ...sandbox.store import ARCHIVED, LIVE, Store

#: Stream -> (object, a property an edit sets).
_EDITABLE = {
    "hubspot_companies": ("companies", "description"),
    "hubspot_contacts": ("contacts", "jobtitle"),
    "hubspot_deals": ("deals", "description"),
    "hubspot_tickets": ("tickets", "subject"),
}
_OBJECTS = ("companies", "contacts", "deals", "tickets", "feedback_submissions")


def expected(store: Store) -> dict[str, Expected]:
    """Live and archived records (archived ones flagged); merged-away ones are not listed."""
    out = {}
    for obj in _OBJECTS:
        rows = store.conn().execute(
            "SELECT id, state FROM records WHERE vendor = 'hubspot' AND object = ?"
            " AND state IN (?, ?)",
            (obj, LIVE, ARCHIVED),
        )
        pairs = [(str(i), s) for i, s in rows]
        out[f"hubspot_{obj}"] = Expected(
            frozenset(i for i, _ in pairs), frozenset(i for i, s in pairs if s == ARCHIVED)
        )
    return out


def edit(url: str, credentials: Mapping[str, Any], stream: str, ids: list[str]) -> bool:
    if stream not in _EDITABLE:
        return False
    obj, prop = _EDITABLE[stream]
    headers = {"Authorization": f"Bearer {credentials['private_app_token']}"}
    for start in range(0, len(ids), 100):
        inputs = [{"id": i, "properties": {prop: "edited"}} for i in ids[start : start + 100]]
        reply = httpx.post(
            f"{url}/crm/v3/objects/{obj}/batch/update", json={"inputs": inputs}, headers=headers
        )
        reply.raise_for_status()
        if reply.json().get("errors"):
            raise AssertionError(f"hubspot refused the kit's edit: {reply.json()['errors'][:2]}")
    return True


KIT = KitHooks(
    expected=expected,
    edit=edit,
    account_stream="hubspot_companies",
    typed_fields={"hubspot_companies": {"seats": "number", "renewal_date": "string"}},
    write_routes=frozenset({"POST /crm/v3/objects/{t}/batch/{op}"}),
    deny_writes={"missing_scopes": ["crm.schemas.companies.write"]},
    api_paths="/crm/*",
)
