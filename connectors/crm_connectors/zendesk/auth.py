"""Zendesk's credentials [API.md §1]:

- an **API token** with the agent's e-mail: HTTP Basic ``{email}/token:{api_token}``
  (:class:`ApiToken`). Zendesk retires API tokens on 2027-04-30 (and unused ones earlier), so
- an **OAuth client** (client id and secret, a confidential client) obtains access tokens with
  the client-credentials grant, ``POST /oauth/tokens`` on the account's host, renewed before
  they expire (30 minutes by default) and once on a 401 (:class:`ClientCredentials`);
- or a static **OAuth access token** (one minted with ``POST /api/v2/oauth/tokens`` never
  expires).

The refresh-token grant is not offered: Zendesk rotates refresh tokens (each refresh deletes
the pair it replaced), and a Singer tap's configuration cannot store the new one, so the second
run would hold a dead token. The client-credentials grant needs no stored token.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..auth import RefreshingToken, StaticToken, token_client
from ..errors import ConfigError
from ..secrets import Secret
from ..settings import secret


class ApiToken(StaticToken):
    """HTTP Basic with ``{email}/token`` as the user and the API token as the password."""

    scheme = "Basic"

    def __init__(self, email: str, api_token: Secret) -> None:
        if not email:
            raise ConfigError("an API token needs the agent's e-mail", setting="zendesk_email")
        if not api_token:
            raise ConfigError("no API token configured", setting="zendesk_api_token")
        pair = f"{email}/token:{api_token.reveal()}".encode()
        super().__init__(
            Secret(base64.b64encode(pair).decode("ascii")), setting="zendesk_api_token"
        )


class ClientCredentials(RefreshingToken):
    """The OAuth client-credentials grant: no user, no refresh token."""

    vendor = "zendesk"
    REQUIRED = ("client_id", "client_secret")
    PREFIX = "zendesk_oauth_"
    SETTINGS = {"invalid_client": "zendesk_oauth_client_secret"}

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: Secret,
        scope: str = "read write",
        lifetime: float = 1800.0,
        skew: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        **client_kw: Any,
    ) -> None:
        super().__init__(
            token_client(self.vendor, base_url, **client_kw),
            client_id=client_id,
            client_secret=client_secret,
            skew=skew,
            clock=clock,
        )
        self._scope = scope
        self._default_lifetime = lifetime

    def _grant(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.reveal(),
            "scope": self._scope,
        }

    def _fetch(self, form: dict[str, str]) -> Any:
        # A JSON body, as the grant-type endpoint documents [API.md §1.4].
        return self._http.request(
            "POST", "/oauth/tokens", json=form, route="POST /oauth/tokens", idempotent=True
        )

    def _lifetime(self, body: dict[str, Any]) -> float:
        return float(body.get("expires_in") or self._default_lifetime)


def base_url(config: Mapping[str, Any]) -> str:
    """The account's host: ``zendesk_base_url``, else ``https://{subdomain}.zendesk.com``."""
    given = str(config.get("zendesk_base_url") or "").rstrip("/")
    if given:
        return given
    subdomain = str(config.get("zendesk_subdomain") or "").strip()
    if not subdomain:
        raise ConfigError("no Zendesk account configured", setting="zendesk_subdomain")
    return f"https://{subdomain}.zendesk.com"


def credentials(config: Mapping[str, Any]) -> StaticToken | ClientCredentials:
    """OAuth client credentials when a client id is set, else a static OAuth access token,
    else the API token."""
    if config.get("zendesk_oauth_client_id"):
        return ClientCredentials(
            base_url=base_url(config),
            client_id=str(config["zendesk_oauth_client_id"]),
            client_secret=secret(config, "zendesk_oauth_client_secret"),
        )
    if config.get("zendesk_access_token"):
        return StaticToken(secret(config, "zendesk_access_token"), setting="zendesk_access_token")
    return ApiToken(str(config.get("zendesk_email") or ""), secret(config, "zendesk_api_token"))
