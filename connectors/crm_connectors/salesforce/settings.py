"""Salesforce's settings, and how they become a client and a connector.

Credentials: a connected app (consumer key and secret) and an OAuth refresh token; the org's
instance URL comes from the token response [API.md §2.1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..roles import named_objects, setting_name
from ..settings import epoch_ms, has_any, setting
from .auth import LOGIN_URL, credentials
from .canonical import ROLES
from .client import API_VERSION, SalesforceClient
from .pacing import SalesforcePacer
from .resources import SalesforceConnector

SETTINGS: dict[str, dict[str, Any]] = {
    "salesforce_client_id": setting("string", "Salesforce connected app consumer key."),
    "salesforce_client_secret": setting(
        "string", "Salesforce connected app consumer secret.", secret=True
    ),
    "salesforce_refresh_token": setting(
        "string",
        "Salesforce OAuth refresh token. The org's instance URL comes from the token response.",
        secret=True,
    ),
    "salesforce_login_url": setting(
        "string",
        "Salesforce login host: https://login.salesforce.com, https://test.salesforce.com "
        "for sandboxes, or a My Domain URL.",
        default=LOGIN_URL,
    ),
    "salesforce_api_version": setting(
        "string", "Salesforce REST API version, e.g. 62.0.", default=API_VERSION
    ),
    "salesforce_objects": setting(
        "array",
        "sObjects to read besides Account, Contact, Opportunity, Case, Task and User (of "
        "those, one the org lacks or the user cannot see is left out with a warning), e.g. "
        "Subscription__c. Each becomes a stream salesforce_<Object>; each must exist. (The NPS "
        "object salesforce_field_mapping names is read without being listed here.)",
    ),
    "salesforce_bulk_threshold": setting(
        "integer",
        "A first run of an object with more records than this uses Bulk API 2.0, smaller ones "
        "REST queryAll. 0 turns Bulk API off.",
        default=50_000,
    ),
    "salesforce_quota_reserve": setting(
        "integer",
        "Stop cleanly (with state saved) when fewer than this many calls of the org's daily "
        "API allocation are left, so the sync never eats the quota other integrations need.",
        default=1_000,
    ),
    "salesforce_session_lifetime_seconds": setting(
        "integer",
        "The org's session timeout. Salesforce's token response has no expiry, so the tap "
        "refreshes this long after each token, and once on a 401.",
        default=7200,
    ),
}
WRITER_SETTINGS: dict[str, dict[str, Any]] = {
    "salesforce_permission_set_id": setting(
        "string",
        "Salesforce permission set that `target-health setup` grants read/edit on the new "
        "Account fields (field-level security); without it the fields are created and the "
        "exact grants to make are listed.",
    ),
}
NEEDS = "salesforce_refresh_token with its client id and secret"
#: Each set of settings that connects (ConnectorSpec.credentials).
CREDENTIALS: tuple[tuple[str, ...], ...] = (
    ("salesforce_client_id", "salesforce_client_secret", "salesforce_refresh_token"),
)


def configured(config: Mapping[str, Any]) -> bool:
    return has_any(config, "salesforce_refresh_token")


def client(config: Mapping[str, Any], **client_kw: Any) -> SalesforceClient:
    """The client; ``client_kw`` are VendorClient's (a ``pacer`` given replaces the guard)."""
    client_kw.setdefault(
        "pacer", SalesforcePacer(min_remaining=int(config.get("salesforce_quota_reserve", 1000)))
    )
    return SalesforceClient(
        credentials(config),
        api_version=str(config.get("salesforce_api_version") or API_VERSION),
        **client_kw,
    )


def connect(config: Mapping[str, Any], **client_kw: Any) -> SalesforceConnector:
    threshold = int(config.get("salesforce_bulk_threshold", 50_000))
    # the objects named in salesforce_objects, and the NPS object the field mapping names
    named = dict.fromkeys(config.get("salesforce_objects") or (), "salesforce_objects")
    for obj in named_objects("salesforce", ROLES, config).values():
        named.setdefault(obj, setting_name("salesforce"))
    return SalesforceConnector(
        client(config, **client_kw),
        objects=named,
        start_date=epoch_ms(config),
        bulk_threshold=threshold if threshold > 0 else None,
    )
