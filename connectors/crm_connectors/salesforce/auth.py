"""Salesforce's token manager: ``POST /services/oauth2/token`` returns ``access_token`` and
``instance_url`` but **no** ``expires_in``; the session lifetime is an org setting (2 h by
default), so it is a parameter here [API.md §2.1].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..auth import RefreshingToken, token_client
from ..secrets import Secret
from ..settings import secret

LOGIN_URL = "https://login.salesforce.com"


class SalesforceOAuth(RefreshingToken):
    """Salesforce OAuth 2.0 refresh-token flow; also says where the org's API lives."""

    vendor = "salesforce"
    PREFIX = "salesforce_"
    # 400 {"error": "invalid_grant" | "invalid_client_id" | "invalid_client", ...}.
    SETTINGS = {
        "invalid_grant": "salesforce_refresh_token",
        "invalid_client_id": "salesforce_client_id",
        "invalid_client": "salesforce_client_secret",
    }

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        login_url: str = LOGIN_URL,
        session_lifetime: float = 7200.0,
        skew: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        **client_kw: Any,
    ) -> None:
        super().__init__(
            token_client(
                self.vendor, login_url, **{"address_setting": "salesforce_login_url", **client_kw}
            ),
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            skew=skew,
            clock=clock,
        )
        self._session_lifetime = session_lifetime
        self._instance_url = ""

    @property
    def instance_url(self) -> str:
        """The org's API host from the token response (fetches a token the first time)."""
        if not self._instance_url:
            self.token()
        return self._instance_url

    def _fetch(self, form: dict[str, str]) -> Any:
        return self._http.request(
            "POST",
            "/services/oauth2/token",
            data=form,
            route="POST /services/oauth2/token",
            idempotent=True,
        )

    def _lifetime(self, body: dict[str, Any]) -> float:
        # No expires_in in Salesforce's token response: the org's session timeout applies.
        return float(body.get("expires_in") or self._session_lifetime)

    def _accept(self, body: dict[str, Any]) -> None:
        self._instance_url = str(body.get("instance_url") or self._instance_url)


def credentials(config: Mapping[str, Any]) -> SalesforceOAuth:
    return SalesforceOAuth(
        client_id=str(config.get("salesforce_client_id") or ""),
        client_secret=secret(config, "salesforce_client_secret"),
        refresh_token=secret(config, "salesforce_refresh_token"),
        login_url=str(config.get("salesforce_login_url") or LOGIN_URL),
        session_lifetime=float(config.get("salesforce_session_lifetime_seconds") or 7200),
    )
