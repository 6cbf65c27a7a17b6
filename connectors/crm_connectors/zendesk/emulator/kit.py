"""The conformance kit's hooks for Zendesk (crm_connectors.testing)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from ...sandbox.emulators import Expected, KitHooks
from ...sandbox.store import LIVE, Store


def expected(store: Store) -> dict[str, Expected]:
    """Every record the exports hold: deleted organizations (``deleted_at``), inactive users
    and deleted tickets (``status: deleted``) come flagged deleted."""
    out = {}
    for obj in ("organizations", "users", "tickets", "satisfaction_ratings"):
        rows = store.conn().execute(
            "SELECT id, state, json_extract(data, '$.status') FROM records"
            " WHERE vendor = 'zendesk' AND object = ?",
            (obj,),
        )
        ids, deleted = set(), set()
        for rid, state, status in rows:
            ids.add(str(rid))
            if (obj != "satisfaction_ratings" and state != LIVE) or (
                obj == "tickets" and status == "deleted"
            ):
                deleted.add(str(rid))
        out[f"zendesk_{obj}"] = Expected(frozenset(ids), frozenset(deleted))
    return out


def edit(url: str, credentials: Mapping[str, Any], stream: str, ids: list[str]) -> bool:
    """Organizations, one ``PUT /organizations/{id}`` each (the only object the emulator
    updates)."""
    if stream != "zendesk_organizations":
        return False
    pair = f"{credentials['email']}/token:{credentials['api_token']}".encode()
    headers = {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    with httpx.Client() as client:
        for rid in ids:
            client.put(
                f"{url}/api/v2/organizations/{rid}",
                json={"organization": {"notes": "edited"}},
                headers=headers,
            ).raise_for_status()
    return True


KIT = KitHooks(
    expected=expected,
    edit=edit,
    account_stream="zendesk_organizations",
    typed_fields={
        "zendesk_organizations": {
            "organization_fields.seats": "integer",
            "organization_fields.arr": "number",
        }
    },
    write_routes=frozenset({"PUT /api/v2/organizations/update_many"}),
    deny_writes={"admin": False},
    api_paths="/api/v2/*",
    settle_seconds=61.0,  # what changed in the last minute is left out of the exports
)
