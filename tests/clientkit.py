"""Helpers for the client-layer tests: one ApiClient per vendor against a running sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_connectors.auth import StaticToken
from crm_connectors.http import ApiClient, Attempt, Credentials
from crm_connectors.hubspot import errors as hubspot_errors
from crm_connectors.hubspot.auth import HubSpotOAuth
from crm_connectors.intercom import errors as intercom_errors
from crm_connectors.salesforce import errors as salesforce_errors
from crm_connectors.salesforce.auth import SalesforceOAuth
from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.secrets import Secret

ALL = ("hubspot", "salesforce", "intercom")
#: Each vendor's error conventions (its connector folder's errors.py).
RULES = {"hubspot": hubspot_errors.RULES, "salesforce": salesforce_errors.RULES,
         "intercom": intercom_errors.RULES}  # fmt: skip
SF_API = "/services/data/v66.0"

#: An authenticated, idempotent read per vendor: (path, params, route template).
READ: dict[str, tuple[str, dict[str, Any], str]] = {
    "hubspot": ("/crm/v3/objects/companies", {"limit": 2}, "GET /crm/v3/objects/{t}"),
    "salesforce": ("/sobjects", {}, "GET /sobjects"),
    "intercom": ("/contacts", {"per_page": 2}, "GET /contacts"),
}

#: Fault path globs covering each vendor's data API but not its OAuth endpoint.
API_PATHS = {"hubspot": "/crm/*", "salesforce": "/services/data/*", "intercom": "/contacts*"}


@dataclass
class Sleeper:
    """The injected sleep: records every wait instead of waiting."""

    waits: list[float] = field(default_factory=list)
    retries: list[Attempt] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def credentials(sandbox: Sandbox, vendor: str, token: str | None = None, **kw: Any) -> Credentials:
    """The vendor's usual credentials: HubSpot private app, Salesforce OAuth, Intercom token.
    ``token`` replaces them with a static token (for bad-token tests)."""
    creds = DEFAULT_CREDENTIALS[vendor]
    if token is not None:
        return StaticToken(Secret(token), setting="access_token")
    if vendor == "hubspot":
        return StaticToken(Secret(creds["private_app_token"]), setting="private_app_token")
    if vendor == "intercom":
        return StaticToken(Secret(creds["access_token"]), setting="access_token")
    return salesforce_oauth(sandbox, **kw)


def salesforce_oauth(sandbox: Sandbox, **kw: Any) -> SalesforceOAuth:
    creds = DEFAULT_CREDENTIALS["salesforce"]
    kw.setdefault("refresh_token", Secret(creds["refresh_token"]))
    kw.setdefault("client_secret", Secret(creds["client_secret"]))
    return SalesforceOAuth(
        client_id=kw.pop("client_id", creds["client_id"]),
        login_url=sandbox.urls["salesforce"],
        **kw,
    )


def hubspot_oauth(sandbox: Sandbox, **kw: Any) -> HubSpotOAuth:
    creds = DEFAULT_CREDENTIALS["hubspot"]
    kw.setdefault("refresh_token", Secret(creds["refresh_token"]))
    kw.setdefault("client_secret", Secret(creds["client_secret"]))
    return HubSpotOAuth(
        client_id=kw.pop("client_id", creds["client_id"]),
        base_url=sandbox.urls["hubspot"],
        **kw,
    )


def client(
    sandbox: Sandbox,
    vendor: str,
    *,
    sleeper: Sleeper | None = None,
    creds: Credentials | None = None,
    **kw: Any,
) -> ApiClient:
    """An ApiClient for ``vendor`` whose waits go to ``sleeper`` (no real sleeping)."""
    creds = creds or credentials(sandbox, vendor)
    base = sandbox.urls[vendor]
    headers: dict[str, str] = {}
    if vendor == "salesforce":
        base = (creds.instance_url if isinstance(creds, SalesforceOAuth) else base) + SF_API
    if vendor == "intercom":
        headers["Intercom-Version"] = "2.14"  # [intercom/API.md §3.1]
    if sleeper is not None:
        kw.setdefault("sleep", sleeper)
        kw.setdefault("on_retry", sleeper.retries.append)
    return ApiClient(vendor, base, errors=RULES[vendor], credentials=creds, headers=headers, **kw)


def statuses(
    sandbox: Sandbox, vendor: str, route: str | None = None, *, total: int | None = None
) -> dict[str, int]:
    """Status counts the sandbox saw for ``vendor`` (one ``"METHOD template"`` route or all).

    The sandbox counts a call before sending its response, so the counts are complete once the
    client has its responses; ``total``, when given, is a lower bound checked against them.
    """
    snap = sandbox.ctx.stats.snapshot()["vendors"].get(vendor, {})
    if route is not None:
        snap = snap.get("routes", {}).get(route, {})
    seen = dict(snap.get("statuses", {}))
    assert total is None or sum(seen.values()) >= total, (seen, total)
    return seen


def faults_fired(sandbox: Sandbox, vendor: str) -> dict[str, int]:
    return dict(sandbox.ctx.stats.snapshot()["vendors"].get(vendor, {}).get("faults", {}))
