"""Credentials the sandbox accepts and issues.

Each emulator declares well-known sandbox credentials (``EmulatorSpec.credentials``; all of
them: :data:`DEFAULT_CREDENTIALS`): static tokens and an OAuth client with a refresh token. The
OAuth token endpoints of the emulators call :meth:`TokenStore.issue_access` to mint access
tokens that expire like the vendor's do. Tokens live in the ``tokens`` table, so they survive a
restart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .store import Store, dumps, loads


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token (for per-token limits) and its kind."""

    vendor: str
    token: str
    kind: str  # "static" | "access"
    info: dict[str, Any] = field(default_factory=dict)


class TokenRejected(Exception):
    """The presented token is missing, unknown or expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "missing" | "invalid" | "expired"


class TokenStore:
    def __init__(
        self,
        store: Store,
        credentials: dict[str, dict[str, Any]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or Clock()
        if credentials is None:
            from .emulators import credentials as registered

            credentials = registered()
        self.credentials = {k: dict(v) for k, v in credentials.items()}
        with store.write() as conn:
            for vendor, creds in self.credentials.items():
                for key in ("private_app_token", "access_token"):
                    if key in creds:
                        conn.execute(
                            "INSERT OR IGNORE INTO tokens (token, vendor, kind, expires_at)"
                            " VALUES (?, ?, 'static', NULL)",
                            (creds[key], vendor),
                        )
                if "refresh_token" in creds:
                    conn.execute(
                        "INSERT OR IGNORE INTO tokens (token, vendor, kind, expires_at)"
                        " VALUES (?, ?, 'refresh', NULL)",
                        (creds["refresh_token"], vendor),
                    )

    def check(self, vendor: str, token: str | None) -> Principal:
        if not token:
            raise TokenRejected("missing")
        row = (
            self.store.conn()
            .execute(
                "SELECT kind, expires_at, info FROM tokens WHERE token = ? AND vendor = ?",
                (token, vendor),
            )
            .fetchone()
        )
        if row is None or row[0] == "refresh":
            raise TokenRejected("invalid")
        kind, expires_at, info = row
        if expires_at is not None and expires_at <= self.clock.time():
            raise TokenRejected("expired")
        return Principal(vendor, token, kind, loads(info))

    def client_ok(self, vendor: str, client_id: str | None, client_secret: str | None) -> bool:
        creds = self.credentials.get(vendor, {})
        return bool(client_id) and (
            client_id == creds.get("client_id") and client_secret == creds.get("client_secret")
        )

    def refresh_ok(self, vendor: str, refresh_token: str | None) -> bool:
        if not refresh_token:
            return False
        row = (
            self.store.conn()
            .execute(
                "SELECT 1 FROM tokens WHERE token = ? AND vendor = ? AND kind = 'refresh'",
                (refresh_token, vendor),
            )
            .fetchone()
        )
        return row is not None

    def issue_access(self, vendor: str, ttl: float | None = None, **info: Any) -> tuple[str, float]:
        """Mint an access token; returns ``(token, lifetime in seconds)``."""
        lifetime = float(
            ttl if ttl is not None else self.credentials[vendor].get("access_token_ttl", 1800)
        )
        token = f"sbx-{vendor[:2]}-{secrets.token_urlsafe(24)}"
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO tokens (token, vendor, kind, expires_at, info)"
                " VALUES (?, ?, 'access', ?, ?)",
                (token, vendor, self.clock.time() + lifetime, dumps(info)),
            )
        return token, lifetime

    def expire(self, token: str) -> None:
        """Make an issued access token expire now (the ``expired_token`` fault)."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE tokens SET expires_at = ? WHERE token = ? AND kind = 'access'",
                (self.clock.time() - 1, token),
            )


def __getattr__(name: str) -> Any:
    # DEFAULT_CREDENTIALS: every installed emulator's, read on first use (the emulators import
    # this module's classes).
    if name == "DEFAULT_CREDENTIALS":
        from .emulators import credentials

        return credentials()
    raise AttributeError(name)
