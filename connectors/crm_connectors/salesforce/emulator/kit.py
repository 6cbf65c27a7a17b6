"""The conformance kit's hooks for Salesforce (crm_connectors.testing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ...sandbox.emulators import Expected, KitHooks
from ...sandbox.store import LIVE, Store

_VERSION = "v66.0"
#: Stream -> (sObject, a field an edit sets).
_EDITABLE = {
    "salesforce_Account": ("Account", "Description"),
    "salesforce_Contact": ("Contact", "Title"),
    "salesforce_Opportunity": ("Opportunity", "Name"),
    "salesforce_Case": ("Case", "Subject"),
}


def expected(store: Store) -> dict[str, Expected]:
    """Every row, ``queryAll`` style: the recycle bin and merged rows come flagged deleted."""
    out = {}
    for obj in ("Account", "Contact", "Opportunity", "Case", "Task", "User", "NPS_Response__c"):
        rows = store.conn().execute(
            "SELECT id, state FROM records WHERE vendor = 'salesforce' AND object = ?", (obj,)
        )
        pairs = [(str(i), s) for i, s in rows]
        out[f"salesforce_{obj}"] = Expected(
            frozenset(i for i, _ in pairs), frozenset(i for i, s in pairs if s != LIVE)
        )
    return out


def edit(url: str, credentials: Mapping[str, Any], stream: str, ids: list[str]) -> bool:
    if stream not in _EDITABLE:
        return False
    sobject, field = _EDITABLE[stream]
    token = httpx.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "refresh_token": credentials["refresh_token"],
        },
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    target = f"{token['instance_url']}/services/data/{_VERSION}/composite/sobjects"
    for start in range(0, len(ids), 200):
        records = [
            {"attributes": {"type": sobject}, "id": i, field: "edited"}
            for i in ids[start : start + 200]
        ]
        reply = httpx.patch(target, json={"allOrNone": True, "records": records}, headers=headers)
        reply.raise_for_status()
    return True


KIT = KitHooks(
    expected=expected,
    edit=edit,
    account_stream="salesforce_Account",
    typed_fields={"salesforce_Account": {"Seats__c": "number", "Renewal_Date__c": "string"}},
    write_routes=frozenset({"PATCH /services/data/{version}/composite/sobjects"}),
    deny_writes={"customize_application": False},
    api_paths="/services/data/*",
    # REQUEST_LIMIT_EXCEEDED without Retry-After is the daily allocation [API.md §2.8]
    bare_throttle_is_quota=True,
)
