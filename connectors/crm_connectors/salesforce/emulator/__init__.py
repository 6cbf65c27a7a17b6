"""Salesforce's emulator for the sandbox (not installed with the plugins): see FIDELITY.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...sandbox.emulators import EmulatorSpec
from ...sandbox.world import CrmProfile
from .app import SalesforceEmulator
from .kit import KIT
from .seed import Seeder

#: Where the seeded org keeps each fact (crm_connectors.roles): custom fields the seeder made, a
#: "Former Customer" Account type, and its custom NPS object. A real org's names are its own.
FIELD_MAPPING: dict[str, Any] = {
    "external_id": "External_Account_Id__c",
    "arr": "AnnualRevenue",
    "seats": "Seats__c",
    "plan": "Plan__c",
    "renewal_date": "Renewal_Date__c",
    "churned": {"field": "Type", "values": ["Former Customer"]},
    "csat": "CSAT__c",
    "nps_object": "NPS_Response__c",
    "nps_score": "Score__c",
    "nps_account": "Account__c",
    "nps_contact": "Contact__c",
    "nps_submitted_at": "Submitted_At__c",
}

#: Where a realistic world's org (``--profile realistic``) keeps them: its own custom fields, a
#: Churned__c checkbox, no NPS object; AnnualRevenue there is the company's revenue, not ARR.
REALISTIC_FIELD_MAPPING: dict[str, Any] = {
    "external_id": "Customer_Number__c",
    "arr": "ARR__c",
    "seats": "Licenses_Purchased__c",
    "plan": "Subscription_Tier__c",
    "renewal_date": "Contract_End_Date__c",
    "customer_since": "Customer_Since__c",
    "churned": "Churned__c",
    "csat": "Satisfaction_Score__c",
}


def _client_settings(url: str, creds: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "salesforce_client_id": creds["client_id"],
        "salesforce_client_secret": creds["client_secret"],
        "salesforce_refresh_token": creds["refresh_token"],
        "salesforce_login_url": url,
    }


EMULATOR = EmulatorSpec(
    name="salesforce",
    app=SalesforceEmulator,
    seeder=Seeder,
    credentials={
        "client_id": "sandbox-salesforce-client",
        "client_secret": "sandbox-salesforce-secret",
        "refresh_token": "sandbox-salesforce-refresh",
        # Salesforce session lifetime defaults to 2 hours; the token response has no expires_in.
        "access_token_ttl": 7200,
    },
    client_settings=_client_settings,
    field_mappings={"seeded": FIELD_MAPPING, "realistic": REALISTIC_FIELD_MAPPING},
    port_offset=2,
    world=CrmProfile(
        "salesforce", 0.45, frozenset({"deals", "tickets", "nps"}), removal="deleted", core=True
    ),
    kit=KIT,
)
