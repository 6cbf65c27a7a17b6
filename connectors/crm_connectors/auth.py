"""Token managers: where a bearer token comes from, and how it is renewed.

- :class:`StaticToken`: a token the API cannot renew (a private-app or personal access token).
  A 401 is tried once more after a pause (:attr:`StaticToken.retry_pause`): the CRMs answer 401
  now and then for a valid token, and one such answer must not end a run; a second 401 is final.
- :class:`RefreshingToken`: the OAuth 2.0 refresh-token flow's bookkeeping; a vendor's folder
  (``auth.py``) subclasses it with its token endpoint and how long its tokens live.

The managers refresh ``skew`` seconds before the expiry they know of, and once more when the API
answers 401 anyway (the :class:`~crm_connectors.http.Credentials` seam). They are thread-safe:
one refresh serves every thread waiting on it. Tokens are :class:`Secret` values, never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import AuthError, ConfigError, CrmError
from .http import ApiClient, RetryPolicy
from .secrets import Secret

log = logging.getLogger(__name__)


class StaticToken:
    """A token that cannot be renewed (HubSpot private app, Intercom access token). ``renew``
    only says "try the same token once more", after ``retry_pause`` seconds (the client's
    sleep, so tests do not wait)."""

    def __init__(self, token: Secret | str, *, setting: str, retry_pause: float = 1.0) -> None:
        self._token = Secret(token) if isinstance(token, str) else token
        self.setting = setting
        self.retry_pause = retry_pause
        if not self._token:
            raise ConfigError("no access token configured", setting=setting)

    def token(self) -> Secret:
        return self._token

    def renew(self, rejected: Secret) -> bool:
        return True


class RefreshingToken:
    """The expiry bookkeeping shared by the OAuth managers; subclasses implement ``_fetch``
    (the token endpoint's call) and ``_lifetime``, and may change the grant (``_grant``; the
    refresh-token grant by default) and the credentials it needs (``REQUIRED``)."""

    vendor = ""
    #: Vendor error code of the token endpoint -> the setting to fix.
    SETTINGS: dict[str, str] = {}
    #: The credentials the grant needs, and the prefix of their setting names in errors.
    REQUIRED: tuple[str, ...] = ("client_id", "client_secret", "refresh_token")
    PREFIX = ""

    def __init__(
        self,
        token_client: ApiClient,
        *,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret | None = None,
        skew: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        given = {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        for name in self.REQUIRED:
            if not given[name]:
                setting = f"{self.PREFIX}{name}"
                raise ConfigError(f"{self.vendor} OAuth needs a {name}", setting=setting)
        self._http = token_client
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token or Secret("")
        self._skew = skew
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._expires_at = 0.0
        self.setting = f"{self.PREFIX}{self.REQUIRED[-1]}"
        self.refreshes = 0

    def close(self) -> None:
        """Close the token endpoint's connection."""
        self._http.close()

    def token(self) -> Secret:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._skew:
                self._refresh()
            assert self._token is not None  # set by _refresh or it raised
            return self._token

    def renew(self, rejected: Secret) -> bool:
        with self._lock:
            if self._token is not None and self._token != rejected:
                return True  # another thread already refreshed
            self._refresh()
            return True

    def _grant(self) -> dict[str, str]:
        """The token request's form: the refresh-token grant."""
        return {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.reveal(),
            "refresh_token": self._refresh_token.reveal(),
        }

    def _refresh(self) -> None:
        try:
            body = self._fetch(self._grant())
        except CrmError as err:
            if err.status in (400, 401):
                setting = self.SETTINGS.get(err.code, self.setting)
                raise AuthError(
                    "token refresh rejected",
                    setting=setting,
                    **err.call(),
                ) from None
            raise
        if not isinstance(body, dict) or not body.get("access_token"):
            raise CrmError("token response has no access_token", vendor=self.vendor)
        self._token = Secret(str(body["access_token"]))
        self._expires_at = self._clock() + self._lifetime(body)
        self.refreshes += 1
        self._accept(body)
        log.info("%s: access token refreshed", self.vendor)

    def _fetch(self, form: dict[str, str]) -> Any:
        raise NotImplementedError

    def _lifetime(self, body: dict[str, Any]) -> float:
        raise NotImplementedError

    def _accept(self, body: dict[str, Any]) -> None:
        return None


def token_client(vendor: str, base_url: str, **kw: Any) -> ApiClient:
    # Refreshing is safe to retry: a retried refresh only mints another access token.
    kw.setdefault("retry", RetryPolicy(max_tries=8, max_time=60.0))
    return ApiClient(vendor, base_url, **kw)
