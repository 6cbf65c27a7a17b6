"""HubSpot's error conventions on top of the shared status table (crm_connectors.http).

- 401 ``EXPIRED_AUTHENTICATION`` is an expired OAuth token (renewed once), any other 401
  (``INVALID_AUTHENTICATION``) is final [API.md §1.1].
- 403 ``MISSING_SCOPES`` names the scopes to grant in ``requiredGranularScopes``: the shared
  table reads them.
- 429 ``RATE_LIMIT`` carries ``policyName``; ``DAILY`` means the account's daily allowance is
  used up (QuotaExhausted), any other policy is a burst throttle (RateLimited) [API.md §1.8].
- 477 "Migration in progress" comes with ``Retry-After`` and is retried like a 5xx [API.md §1.9].
"""

from __future__ import annotations

from typing import Any

from ..errors import CrmError, QuotaExhausted, RateLimited, ServerError
from ..http import ErrorRules


class HubSpotErrors(ErrorRules):
    expired_codes = frozenset({"EXPIRED_AUTHENTICATION"})

    def special(
        self, status: int, code: str, body: Any, retry_after: float | None, kw: dict[str, Any]
    ) -> CrmError | None:
        if status == 429:
            policy = str(body.get("policyName") or "") if isinstance(body, dict) else ""
            if policy == "DAILY":
                return QuotaExhausted("daily request limit reached", **kw)
            return RateLimited("throttled", retry_after=retry_after, policy=policy, **kw)
        if status == 477:
            return ServerError("migration in progress", retry_after=retry_after, **kw)
        return None


RULES = HubSpotErrors("hubspot")
