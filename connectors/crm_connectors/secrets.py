"""Secret-ness carried in the type, and URL redaction for logs and error messages.

A :class:`Secret` prints as ``***`` however it is formatted (``str``, ``repr``, f-strings,
``%s`` logging), so a token can't leak by accident; code that must send it calls
:meth:`Secret.reveal`.
"""

from __future__ import annotations

import hmac
import urllib.parse
from typing import Any

MASK = "***"

#: Query parameters whose values are credentials (HubSpot's sunset ``hapikey``, OAuth fields,
#: Salesforce's ``access_token`` in front-door URLs, generic names).
SENSITIVE_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "client_secret",
        "code",
        "hapikey",
        "key",
        "password",
        "refresh_token",
        "signature",
        "sig",
        "token",
    }
)


class Secret:
    """A string that never shows itself: ``str``/``repr``/``format`` give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", str(value))

    def reveal(self) -> str:
        """The real value, for the one place that sends it."""
        value: str = object.__getattribute__(self, "_value")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.reveal().encode(), other.reveal().encode())

    def __hash__(self) -> int:
        return hash(("Secret", self.reveal()))

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not picklable")


def redact_url(url: str, params: frozenset[str] = SENSITIVE_PARAMS) -> str:
    """``url`` with credential query values and any userinfo password replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    kept = []
    for part in parts.query.split("&"):
        raw = part.split("=", 1)[0]
        secret = urllib.parse.unquote_plus(raw).lower() in params
        kept.append(f"{raw}={MASK}" if secret else part)
    query = "&".join(kept)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
