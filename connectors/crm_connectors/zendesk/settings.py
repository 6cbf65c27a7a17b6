"""Zendesk's settings, and how they become a client and a connector.

The account is its subdomain (``acme`` for ``acme.zendesk.com``) or a full base URL. Credentials:
an agent's e-mail with an API token, an OAuth client (client credentials), or an OAuth access
token (auth.py) [API.md §1].
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..settings import epoch_ms, has_any, setting
from .auth import base_url, credentials
from .client import ZendeskClient
from .pacing import ZendeskPacer
from .resources import ZendeskConnector

SETTINGS: dict[str, dict[str, Any]] = {
    "zendesk_subdomain": setting(
        "string", "Zendesk account subdomain: acme for https://acme.zendesk.com."
    ),
    "zendesk_base_url": setting(
        "string",
        "Zendesk account URL, instead of the subdomain (a host mapped to the account, or the CRM"
        " sandbox in meltano.yml's dev environment).",
    ),
    "zendesk_email": setting(
        "string", "E-mail of the Zendesk agent (an admin, for the exports) the API token acts as."
    ),
    "zendesk_api_token": setting(
        "string",
        "Zendesk API token (with zendesk_email). Zendesk retires API tokens on 2027-04-30: prefer"
        " the OAuth settings.",
        secret=True,
    ),
    "zendesk_oauth_client_id": setting(
        "string",
        "Zendesk OAuth client's unique identifier (a confidential client): access tokens come"
        " from the client-credentials grant and are renewed before they expire.",
    ),
    "zendesk_oauth_client_secret": setting("string", "Zendesk OAuth client's secret.", secret=True),
    "zendesk_access_token": setting(
        "string",
        "A Zendesk OAuth access token that does not expire (instead of the other credentials).",
        secret=True,
    ),
    "zendesk_exports_per_minute": setting(
        "integer",
        "Incremental export calls per minute: Zendesk allows 10 (30 with the High Volume API"
        " add-on) and sends no header for it, so the tap keeps to this budget itself.",
        default=10,
    ),
}
WRITER_SETTINGS: dict[str, dict[str, Any]] = {
    "zendesk_job_wait_seconds": setting(
        "number",
        "How long write-back waits for an organizations update job to finish before leaving its"
        " records for the next run.",
        default=300,
    ),
}
NEEDS = "zendesk_email with zendesk_api_token (or the zendesk OAuth settings)"
#: Each set of settings that connects (ConnectorSpec.credentials).
CREDENTIALS: tuple[tuple[str, ...], ...] = tuple(
    (account, *credentials)
    for account in ("zendesk_subdomain", "zendesk_base_url")
    for credentials in (
        ("zendesk_email", "zendesk_api_token"),
        ("zendesk_oauth_client_id", "zendesk_oauth_client_secret"),
        ("zendesk_access_token",),
    )
)


def configured(config: Mapping[str, Any]) -> bool:
    return has_any(config, "zendesk_api_token", "zendesk_oauth_client_id", "zendesk_access_token")


def client(config: Mapping[str, Any], **client_kw: Any) -> ZendeskClient:
    """The client; ``client_kw`` are VendorClient's (a ``pacer`` given replaces Zendesk's)."""
    if "pacer" not in client_kw:
        client_kw["pacer"] = ZendeskPacer(
            exports_per_minute=int(config.get("zendesk_exports_per_minute") or 10),
            sleep=client_kw.get("sleep", time.sleep),
        )
    where = "zendesk_base_url" if config.get("zendesk_base_url") else "zendesk_subdomain"
    client_kw.setdefault("address_setting", where)
    return ZendeskClient(credentials(config), host=base_url(config), **client_kw)


def connect(config: Mapping[str, Any], **client_kw: Any) -> ZendeskConnector:
    return ZendeskConnector(client(config, **client_kw), start_date=epoch_ms(config))
