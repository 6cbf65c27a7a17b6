"""Zendesk's error conventions on top of the shared status table (crm_connectors.http).

Errors are ``{"error": "<Code>", "description": ...}`` (RecordNotFound, RecordInvalid,
InvalidValue, APIRateLimitExceeded, TooManyValues...), or for some throttles
``{"errors": [{"code": "TooManyRequests"}]}`` [API.md §8.1, §7.1].

- 401 ``invalid_token`` is an expired or revoked OAuth token (renewed once when the credentials
  can renew); ``Couldn't authenticate you`` rejects an API token or e-mail [API.md §1.5].
- 429 carries ``Retry-After`` (seconds) [API.md §2.2]; ``TooManyJobs`` (more than 30 background
  jobs queued or running, status undocumented) is a throttle too [API.md §2.4].
- 422 ``RecordInvalid`` / ``InvalidValue`` is a request the API refused (FatalError), which a
  writer reports against the records it carried.
"""

from __future__ import annotations

from typing import Any

from ..errors import CrmError, RateLimited
from ..http import ErrorRules, envelope_code


class ZendeskErrors(ErrorRules):
    expired_codes = frozenset({"invalid_token"})

    def code(self, body: Any) -> str:
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                return str(errors[0].get("code") or "")
        return envelope_code(body)

    def special(
        self, status: int, code: str, body: Any, retry_after: float | None, kw: dict[str, Any]
    ) -> CrmError | None:
        if code == "TooManyJobs":
            return RateLimited("too many background jobs", retry_after=retry_after, **kw)
        return None


RULES = ZendeskErrors("zendesk")
