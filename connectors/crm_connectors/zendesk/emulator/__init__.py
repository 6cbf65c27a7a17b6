"""Zendesk Support's emulator for the sandbox (not installed with the plugins): see FIDELITY.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...sandbox.emulators import EmulatorSpec
from ...sandbox.world import CrmProfile
from .app import ZendeskEmulator
from .kit import KIT
from .seed import Seeder

#: Where the seeded account keeps each fact (crm_connectors.roles): organization fields the seeder
#: made. A real account's keys are its own.
FIELD_MAPPING: dict[str, Any] = {
    role: f"organization_fields.{role}"
    for role in ("arr", "seats", "plan", "renewal_date", "customer_since")
}


#: Where the realistic account keeps them: organization fields of its own keys.
REALISTIC_FIELD_MAPPING: dict[str, Any] = {
    "arr": "organization_fields.contract_value",
    "seats": "organization_fields.licensed_agents",
    "plan": "organization_fields.service_tier",
    "renewal_date": "organization_fields.contract_end",
    "customer_since": "organization_fields.customer_since_date",
}


def _client_settings(url: str, creds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "zendesk_subdomain": "sandbox",
        "zendesk_base_url": url,
        "zendesk_email": creds["email"],
        "zendesk_api_token": creds["api_token"],
    }


EMULATOR = EmulatorSpec(
    name="zendesk",
    app=ZendeskEmulator,
    seeder=Seeder,
    credentials={
        # HTTP Basic "{email}/token:{api_token}" [API.md §1.2]; the email is the seeded admin.
        "email": "sandbox-admin@example.com",
        "api_token": "sandbox-zendesk-token",
        # OAuth client for the client_credentials grant at POST /oauth/tokens [API.md §1.4].
        "client_id": "sandbox-zendesk-client",
        "client_secret": "sandbox-zendesk-secret",
        # Access tokens live 30 minutes by default [API.md §1.4].
        "access_token_ttl": 1800,
    },
    client_settings=_client_settings,
    field_mappings={"seeded": FIELD_MAPPING, "realistic": REALISTIC_FIELD_MAPPING},
    port_offset=4,
    world=CrmProfile("zendesk", 0.35, frozenset({"tickets"}), removal="deleted"),
    kit=KIT,
)
