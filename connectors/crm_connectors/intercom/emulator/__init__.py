"""Intercom's emulator for the sandbox (not installed with the plugins): see FIDELITY.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...sandbox.emulators import EmulatorSpec
from ...sandbox.world import CrmProfile
from .app import IntercomEmulator
from .kit import KIT
from .seed import Seeder

#: Where the seeded workspace keeps each fact (crm_connectors.roles): custom company attributes
#: the seeder made. A real workspace's names are its own.
FIELD_MAPPING: dict[str, Any] = {
    role: f"custom_attributes.{role}"
    for role in ("arr", "seats", "renewal_date", "customer_since", "payment_issue")
}


#: Where the realistic workspace keeps them: custom attributes of its own names.
REALISTIC_FIELD_MAPPING: dict[str, Any] = {
    "arr": "custom_attributes.annual_contract_value",
    "seats": "custom_attributes.seat_count",
    "renewal_date": "custom_attributes.next_renewal",
    "customer_since": "custom_attributes.became_customer",
    "payment_issue": "custom_attributes.billing_overdue",
}


def _client_settings(url: str, creds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "intercom_access_token": creds["access_token"],
        "intercom_base_url": url,
        "intercom_search_settle_seconds": 0,  # the sandbox indexes at once
    }


EMULATOR = EmulatorSpec(
    name="intercom",
    app=IntercomEmulator,
    seeder=Seeder,
    credentials={"access_token": "sandbox-intercom-token"},
    client_settings=_client_settings,
    field_mappings={"seeded": FIELD_MAPPING, "realistic": REALISTIC_FIELD_MAPPING},
    port_offset=3,
    world=CrmProfile("intercom", 0.4, frozenset({"tickets"}), removal="archived", core=True),
    kit=KIT,
)
