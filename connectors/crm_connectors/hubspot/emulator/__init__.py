"""HubSpot's emulator for the sandbox (not installed with the plugins): see FIDELITY.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...sandbox.emulators import EmulatorSpec
from ...sandbox.world import CrmProfile
from .app import HubSpotEmulator
from .kit import KIT
from .model import RENEWALS_PIPELINE
from .seed import Seeder

#: Where the seeded portal keeps each fact (crm_connectors.roles): properties the seeder made, and
#: its churned companies' lifecycle stage "other". A real portal's names are its own.
FIELD_MAPPING: dict[str, Any] = {
    "external_id": "external_account_id",
    "arr": "annualrevenue",
    "seats": "seats",
    "plan": "plan",
    "renewal_date": "renewal_date",
    "customer_since": "customer_since",
    "churned": {"field": "lifecyclestage", "values": ["other"]},
    "csat": "csat",
}


#: Where the realistic portal keeps them: its own property names, a status picklist for churn.
REALISTIC_FIELD_MAPPING: dict[str, Any] = {
    "external_id": "customer_id",
    "arr": "arr_usd",
    "seats": "licensed_seats",
    "plan": "subscription_tier",
    "renewal_date": "contract_renewal_date",
    "customer_since": "became_customer_on",
    "churned": {"field": "account_status", "values": ["churned"]},
    "csat": "satisfaction_score",
    # renewals are the deals of the Renewals pipeline (their dealtype is empty)
    "deal_kind": {"field": "pipeline", "values": {"renewal": [RENEWALS_PIPELINE]}},
}


def _client_settings(url: str, creds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "hubspot_access_token": creds["private_app_token"],
        "hubspot_base_url": url,
        "hubspot_search_settle_seconds": 0,  # the sandbox indexes at once
    }


EMULATOR = EmulatorSpec(
    name="hubspot",
    app=HubSpotEmulator,
    seeder=Seeder,
    credentials={
        "private_app_token": "pat-sandbox-hubspot",
        "client_id": "sandbox-hubspot-client",
        "client_secret": "sandbox-hubspot-secret",
        "refresh_token": "sandbox-hubspot-refresh",
        # HubSpot OAuth access tokens live 30 minutes (expires_in: 1800).
        "access_token_ttl": 1800,
    },
    client_settings=_client_settings,
    field_mappings={"seeded": FIELD_MAPPING, "realistic": REALISTIC_FIELD_MAPPING},
    port_offset=1,
    world=CrmProfile(
        "hubspot",
        0.6,
        frozenset({"deals", "tickets", "nps"}),
        removal="archived",
        ties=True,
        core=True,
    ),
    kit=KIT,
)
