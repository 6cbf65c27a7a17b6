"""Intercom's settings, and how they become a client and a connector.

Credentials: an access token (static: Intercom does not expire it through the API)
[API.md §3.1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..settings import epoch_ms, has_any, setting
from .auth import credentials
from .client import DEFAULT_BASE_URL, IntercomClient
from .resources import IntercomConnector

SETTINGS: dict[str, dict[str, Any]] = {
    "intercom_access_token": setting("string", "Intercom access token.", secret=True),
    "intercom_base_url": setting(
        "string",
        "Intercom API host: https://api.intercom.io, https://api.eu.intercom.io or "
        "https://api.au.intercom.io.",
        default=DEFAULT_BASE_URL,
    ),
    "intercom_search_settle_seconds": setting(
        "number",
        "Contacts and conversations modified this recently are left for the next run, as "
        "Intercom's search takes a while to show new changes.",
        default=300,
    ),
}
NEEDS = "intercom_access_token"
#: Each set of settings that connects (ConnectorSpec.credentials).
CREDENTIALS: tuple[tuple[str, ...], ...] = (("intercom_access_token",),)


def configured(config: Mapping[str, Any]) -> bool:
    return has_any(config, "intercom_access_token")


def client(config: Mapping[str, Any], **client_kw: Any) -> IntercomClient:
    return IntercomClient(
        credentials(config),
        base_url=str(config.get("intercom_base_url") or DEFAULT_BASE_URL),
        **{"address_setting": "intercom_base_url", **client_kw},
    )


def connect(config: Mapping[str, Any], **client_kw: Any) -> IntercomConnector:
    return IntercomConnector(
        client(config, **client_kw),
        start_date=epoch_ms(config),
        settle_ms=int(float(config.get("intercom_search_settle_seconds", 300)) * 1000),
    )
