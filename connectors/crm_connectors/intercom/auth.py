"""Intercom's credentials: an access token, which the API never expires or renews, so a 401 is
final [API.md §3.1]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth import StaticToken
from ..settings import secret


def credentials(config: Mapping[str, Any]) -> StaticToken:
    return StaticToken(secret(config, "intercom_access_token"), setting="intercom_access_token")
