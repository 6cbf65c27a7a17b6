"""HubSpot's settings, and how they become a client and a connector.

Credentials: a private-app access token, or an OAuth app (client id, secret and refresh token;
access tokens are renewed before they expire) [API.md §1.1].
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..settings import epoch_ms, has_any, setting
from .auth import credentials
from .client import DEFAULT_BASE_URL, HubSpotClient
from .pacing import HubSpotPacer
from .resources import HubSpotConnector

SETTINGS: dict[str, dict[str, Any]] = {
    "hubspot_access_token": setting(
        "string",
        "HubSpot private-app access token (or use the OAuth settings below).",
        secret=True,
    ),
    "hubspot_client_id": setting("string", "HubSpot OAuth app client id."),
    "hubspot_client_secret": setting("string", "HubSpot OAuth app client secret.", secret=True),
    "hubspot_refresh_token": setting(
        "string",
        "HubSpot OAuth refresh token; access tokens are renewed before they expire.",
        secret=True,
    ),
    "hubspot_base_url": setting(
        "string",
        "HubSpot API host (the CRM sandbox in meltano.yml's dev environment).",
        default=DEFAULT_BASE_URL,
    ),
    "hubspot_search_settle_seconds": setting(
        "number",
        "Records modified this recently are left for the next run: HubSpot's search index "
        "lags writes by a few seconds, and a record indexed late behind the bookmark would "
        "be missed.",
        default=10,
    ),
    "hubspot_search_requests_per_second": setting(
        "integer",
        "Pace of HubSpot search calls. HubSpot allows 5 per second per account and sends no "
        "headers for it, so the tap keeps to this budget itself.",
        default=5,
    ),
    "hubspot_associations_refresh_hours": setting(
        "number",
        "HubSpot associations have no modification time, so hubspot_associations is read in "
        "full, at most this often (0: every run); runs in between skip it.",
        default=24,
    ),
}
NEEDS = "hubspot_access_token (or the hubspot OAuth settings)"
#: Each set of settings that connects (ConnectorSpec.credentials).
CREDENTIALS: tuple[tuple[str, ...], ...] = (
    ("hubspot_access_token",),
    ("hubspot_client_id", "hubspot_client_secret", "hubspot_refresh_token"),
)


def configured(config: Mapping[str, Any]) -> bool:
    return has_any(config, "hubspot_access_token", "hubspot_refresh_token")


def client(config: Mapping[str, Any], **client_kw: Any) -> HubSpotClient:
    """The client; ``client_kw`` are VendorClient's (a ``pacer`` given replaces HubSpot's)."""
    base_url = str(config.get("hubspot_base_url") or DEFAULT_BASE_URL)
    if "pacer" not in client_kw:
        client_kw["pacer"] = HubSpotPacer(
            search_per_second=int(config.get("hubspot_search_requests_per_second") or 5),
            sleep=client_kw.get("sleep", time.sleep),
        )
    client_kw.setdefault("address_setting", "hubspot_base_url")
    return HubSpotClient(credentials(config), base_url=base_url, **client_kw)


def connect(config: Mapping[str, Any], **client_kw: Any) -> HubSpotConnector:
    return HubSpotConnector(
        client(config, **client_kw),
        start_date=epoch_ms(config),
        settle_ms=int(float(config.get("hubspot_search_settle_seconds", 10)) * 1000),
        associations_refresh_hours=float(config.get("hubspot_associations_refresh_hours", 24)),
    )
