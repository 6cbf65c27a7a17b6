"""The conformance kit's hooks for Intercom (crm_connectors.testing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ...sandbox.emulators import Expected, KitHooks
from ...sandbox.store import ARCHIVED, LIVE, Store

#: Stream -> (object, a field an edit sets).
_EDITABLE = {"intercom_contacts": ("contacts", "name"), "intercom_companies": ("companies", "plan")}


def expected(store: Store) -> dict[str, Expected]:
    """Contacts live and archived (archived flagged); companies and conversations live only
    (an archived company leaves the scroll)."""
    out = {}
    for obj, states in (
        ("contacts", (LIVE, ARCHIVED)),
        ("companies", (LIVE,)),
        ("conversations", (LIVE,)),
    ):
        marks = ", ".join("?" * len(states))
        rows = store.conn().execute(
            f"SELECT id, state FROM records WHERE vendor = 'intercom' AND object = ?"
            f" AND state IN ({marks})",
            (obj, *states),
        )
        pairs = [(str(i), s) for i, s in rows]
        out[f"intercom_{obj}"] = Expected(
            frozenset(i for i, _ in pairs), frozenset(i for i, s in pairs if s == ARCHIVED)
        )
    return out


def edit(url: str, credentials: Mapping[str, Any], stream: str, ids: list[str]) -> bool:
    if stream not in _EDITABLE:
        return False
    obj, field = _EDITABLE[stream]
    headers = {
        "Authorization": f"Bearer {credentials['access_token']}",
        "Intercom-Version": "2.14",
    }
    with httpx.Client() as client:
        for rid in ids:
            client.put(
                f"{url}/{obj}/{rid}", json={field: "edited"}, headers=headers
            ).raise_for_status()
    return True


KIT = KitHooks(
    expected=expected,
    edit=edit,
    account_stream="intercom_companies",
    typed_fields={"intercom_companies": {"custom_attributes.seats": "integer"}},
    write_routes=frozenset({"PUT /companies/{company_id}"}),
    deny_writes={"missing_scopes": ["write_data_attributes"]},
    api_paths="/*",
)
