"""The one error tree of the connector layer, grouped by what the caller should do.

```
CrmError                     base; carries vendor, method, route template, status, vendor code
├── ConfigError              fix the config; never retried; names the setting
├── RetriableError           retried with backoff by the HTTP client
│   ├── RateLimited          429 (or Salesforce 403 with Retry-After); carries retry_after
│   ├── ServerError          5xx, HubSpot 477 "Migration in progress"
│   └── NetworkError         connection reset or dropped, timeout, truncated body
├── FatalError               abort the sync
│   ├── AuthError            401 that a token refresh did not cure; names the setting to fix
│   ├── MissingScopes        403 for missing grants; carries the scopes to grant
│   ├── NotFound             404 / 410
│   ├── Unavailable          an optional object the account lacks or the user cannot see
│   └── QuotaExhausted       Salesforce daily allocation, HubSpot DAILY, or our own quota guard
├── SkippableError           one record is bad; counted and reported by id, the run continues
└── WriteError               a write could not be applied as planned
    ├── WriteConflict        409 / 412: someone changed the record since the plan
    └── NotReversible        the change cannot be rolled back
```

Messages carry the vendor, the HTTP method, the route template (``GET /crm/v3/objects/{t}``),
the status, the vendor's error *code* and record ids. They never carry tokens, request or response
bodies, the vendor's free-text message (it echoes field values) or query strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CrmError(Exception):
    """Base of every error the connector layer raises."""

    def __init__(
        self,
        what: str,
        *,
        vendor: str = "",
        method: str = "",
        route: str = "",
        status: int | None = None,
        code: str = "",
        ids: Sequence[str] = (),
    ) -> None:
        self.what = what
        self.vendor = vendor
        self.method = method
        self.route = route
        self.status = status
        self.code = code
        self.ids = tuple(str(i) for i in ids)
        super().__init__(self._compose())

    def call(self) -> dict[str, Any]:
        """The call this error is about (vendor, method, route, status, code), for raising
        another error about the same call with a message that says what to do."""
        return {
            "vendor": self.vendor,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "code": self.code,
        }

    def _compose(self) -> str:
        where = " ".join(p for p in (self.vendor, self.route or self.method) if p)
        detail = ", ".join(
            p
            for p in (
                f"HTTP {self.status}" if self.status is not None else "",
                self.code,
                f"ids {', '.join(self.ids)}" if self.ids else "",
            )
            if p
        )
        text = f"{where}: {self.what}" if where else self.what
        return f"{text} ({detail})" if detail else text


class ConfigError(CrmError):
    """The configuration is wrong; ``setting`` names the setting to fix."""

    def __init__(self, what: str, *, setting: str, **kw: Any) -> None:
        self.setting = setting
        super().__init__(f"{what}; check the setting '{setting}'", **kw)


class RetriableError(CrmError):
    """Transient: the HTTP client retries it with backoff; ``retry_after`` (seconds) when the
    vendor said how long to wait (``Retry-After``)."""

    def __init__(self, what: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(what, **kw)


class RateLimited(RetriableError):
    """The vendor throttled the call; ``policy`` is HubSpot's ``policyName`` when given."""

    def __init__(self, what: str, *, policy: str = "", **kw: Any) -> None:
        self.policy = policy
        super().__init__(what, **kw)


class ServerError(RetriableError):
    """The vendor failed (5xx, 477)."""


class NetworkError(RetriableError):
    """No complete response: connect failure, reset, drop, timeout or a truncated body."""

    def __init__(self, what: str, *, sent: bool = True, **kw: Any) -> None:
        #: False when the request certainly never reached the server (connect failure), so even
        #: a non-idempotent request may be retried.
        self.sent = sent
        super().__init__(what, **kw)


class FatalError(CrmError):
    """Abort the sync: retrying cannot help."""


class AuthError(FatalError):
    """Credentials rejected; ``setting`` names the setting to fix when known."""

    def __init__(self, what: str, *, setting: str = "", expired: bool = False, **kw: Any) -> None:
        self.setting = setting
        self.expired = expired
        if setting:
            what = f"{what}; check the setting '{setting}'"
        super().__init__(what, **kw)


class MissingScopes(FatalError):
    """The token lacks grants; ``scopes`` lists the ones to grant (empty when not said)."""

    def __init__(self, what: str, *, scopes: Sequence[str] = (), **kw: Any) -> None:
        self.scopes = tuple(scopes)
        if self.scopes:
            what = f"{what}; grant {', '.join(self.scopes)}"
        super().__init__(what, **kw)


class NotFound(FatalError):
    """The resource does not exist (404) or is gone (410)."""


class Unavailable(FatalError):
    """An object read by default that this account lacks, or the credentials cannot see (a
    Salesforce org without Case access, say): its stream is left out of discovery with a
    warning, never a failed run. An object the user named in a setting is a ConfigError."""


class QuotaExhausted(FatalError):
    """A daily allocation is used up, or our guard stopped before eating the org's quota."""


class SkippableError(CrmError):
    """One record cannot be processed; the run continues and reports it by id."""


class WriteError(CrmError):
    """A write could not be applied as planned."""


class WriteConflict(WriteError):
    """The record changed since the plan was made (409, 412)."""


class NotReversible(WriteError):
    """The change cannot be rolled back."""
