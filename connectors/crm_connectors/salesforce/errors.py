"""Salesforce's error conventions on top of the shared status table (crm_connectors.http).

- Errors are a list ``[{"message", "errorCode"}]``; the code is the first one's ``errorCode``.
- 401 ``INVALID_SESSION_ID`` is an expired session (renewed once) [API.md §2.9].
- REST never answers 429: ``REQUEST_LIMIT_EXCEEDED`` (403) is either the org's rolling 24-hour
  allocation used up ("TotalRequests Limit exceeded.", QuotaExhausted), or a transient limit
  (a ``Retry-After``, or "ConcurrentPerOrgLongTxn Limit exceeded": RateLimited) [API.md §2.8].
"""

from __future__ import annotations

from typing import Any

from ..errors import CrmError, QuotaExhausted, RateLimited
from ..http import ErrorRules


def _concurrent_limit(body: Any) -> bool:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return "Concurrent" in str(body[0].get("message") or "")
    return False


class SalesforceErrors(ErrorRules):
    expired_codes = frozenset({"INVALID_SESSION_ID"})

    def special(
        self, status: int, code: str, body: Any, retry_after: float | None, kw: dict[str, Any]
    ) -> CrmError | None:
        if code != "REQUEST_LIMIT_EXCEEDED" and status != 429:
            return None
        if retry_after is None and not _concurrent_limit(body):
            return QuotaExhausted("daily API allocation exhausted", **kw)
        return RateLimited("throttled", retry_after=retry_after, **kw)


RULES = SalesforceErrors("salesforce")
