"""HubSpot's token managers: private-app tokens are static (``crm_connectors.auth.StaticToken``);
OAuth apps renew through ``POST /oauth/v1/token`` (form-encoded ``grant_type=refresh_token``),
which returns ``access_token`` and ``expires_in`` (1800 s) [API.md §1.1].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..auth import RefreshingToken, StaticToken, token_client
from ..secrets import Secret
from ..settings import secret
from .client import DEFAULT_BASE_URL


class HubSpotOAuth(RefreshingToken):
    """HubSpot OAuth 2.0 refresh-token flow."""

    vendor = "hubspot"
    PREFIX = "hubspot_"
    # 400 {"status": "BAD_REFRESH_TOKEN" | "BAD_CLIENT_ID" | "BAD_CLIENT_SECRET", ...}.
    SETTINGS = {
        "BAD_REFRESH_TOKEN": "hubspot_refresh_token",
        "BAD_CLIENT_ID": "hubspot_client_id",
        "BAD_CLIENT_SECRET": "hubspot_client_secret",
    }

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        base_url: str = DEFAULT_BASE_URL,
        skew: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        **client_kw: Any,
    ) -> None:
        super().__init__(
            token_client(
                self.vendor, base_url, **{"address_setting": "hubspot_base_url", **client_kw}
            ),
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            skew=skew,
            clock=clock,
        )

    def _fetch(self, form: dict[str, str]) -> Any:
        return self._http.request(
            "POST", "/oauth/v1/token", data=form, route="POST /oauth/v1/token", idempotent=True
        )

    def _lifetime(self, body: dict[str, Any]) -> float:
        return float(body.get("expires_in") or 1800)


def credentials(config: Mapping[str, Any]) -> HubSpotOAuth | StaticToken:
    """OAuth when a refresh token is set, else the private-app token."""
    if config.get("hubspot_refresh_token"):
        return HubSpotOAuth(
            client_id=str(config.get("hubspot_client_id") or ""),
            client_secret=secret(config, "hubspot_client_secret"),
            refresh_token=secret(config, "hubspot_refresh_token"),
            base_url=str(config.get("hubspot_base_url") or DEFAULT_BASE_URL),
        )
    return StaticToken(secret(config, "hubspot_access_token"), setting="hubspot_access_token")
