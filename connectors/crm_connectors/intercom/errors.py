"""Intercom's error conventions: the shared status table (crm_connectors.http) covers them.

Errors come as ``{"type": "error.list", "errors": [{"code", "message"}]}``: 401
``unauthorized`` (an access token is static, so final), 403 ``forbidden`` (the app lacks a
permission), 404 ``not_found``/``company_not_found``, 429 ``rate_limit_exceeded`` with the
``X-RateLimit-*`` headers [API.md §3.7, §3.8].
"""

from __future__ import annotations

from ..http import ErrorRules

RULES = ErrorRules("intercom")
