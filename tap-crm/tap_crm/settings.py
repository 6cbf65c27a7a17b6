"""tap-crm's settings and how they become connectors.

Settings are flat (``hubspot_access_token``, ``salesforce_refresh_token``...) so that each is one
Meltano setting, one ``TAP_CRM_<NAME>`` environment variable and one line of
``tap-crm --about``. Every credential and key is ``secret=True`` here and ``sensitive: true`` in
meltano.yml.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from singer_sdk import typing as th

from crm_connectors.base import Connector
from crm_connectors.errors import ConfigError
from crm_connectors.hubspot.client import DEFAULT_BASE_URL as HUBSPOT_URL
from crm_connectors.hubspot.client import HubSpotClient
from crm_connectors.hubspot.resources import HubSpotConnector
from crm_connectors.intercom.client import DEFAULT_BASE_URL as INTERCOM_URL
from crm_connectors.intercom.client import IntercomClient
from crm_connectors.intercom.resources import IntercomConnector
from crm_connectors.oauth import HubSpotOAuth, SalesforceOAuth, StaticToken
from crm_connectors.pacing import HubSpotPacer, SalesforcePacer
from crm_connectors.pii import (
    SETTING_KEYS,
    KeyRing,
    Mode,
    PiiConfigError,
    PiiPolicy,
    pii_fields,
)
from crm_connectors.salesforce.client import API_VERSION as SALESFORCE_API_VERSION
from crm_connectors.salesforce.client import SalesforceClient
from crm_connectors.salesforce.resources import SalesforceConnector
from crm_connectors.secrets import Secret
from crm_connectors.timefmt import iso_to_ms

CRMS = ("hubspot", "salesforce", "intercom")
SALESFORCE_LOGIN_URL = "https://login.salesforce.com"

_PII_MODES = [m.value for m in Mode]

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "crms",
        th.ArrayType(th.StringType(allowed_values=list(CRMS))),
        description=(
            "Which CRMs to read: any of hubspot, salesforce, intercom. Default: every CRM whose "
            "credentials are set."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description=(
            "Read records modified at or after this time on a first run (ISO 8601). Default: "
            "everything. Later runs continue from their state."
        ),
    ),
    # -- HubSpot ----------------------------------------------------------------------------
    th.Property(
        "hubspot_access_token",
        th.StringType,
        secret=True,
        description="HubSpot private-app access token (or use the OAuth settings below).",
    ),
    th.Property("hubspot_client_id", th.StringType, description="HubSpot OAuth app client id."),
    th.Property(
        "hubspot_client_secret",
        th.StringType,
        secret=True,
        description="HubSpot OAuth app client secret.",
    ),
    th.Property(
        "hubspot_refresh_token",
        th.StringType,
        secret=True,
        description="HubSpot OAuth refresh token; access tokens are renewed before they expire.",
    ),
    th.Property(
        "hubspot_base_url",
        th.StringType,
        default=HUBSPOT_URL,
        description="HubSpot API host (the CRM sandbox in meltano.yml's dev environment).",
    ),
    th.Property(
        "hubspot_search_settle_seconds",
        th.NumberType,
        default=10,
        description=(
            "Records modified this recently are left for the next run: HubSpot's search index "
            "lags writes by a few seconds, and a record indexed late behind the bookmark would "
            "be missed."
        ),
    ),
    th.Property(
        "hubspot_search_requests_per_second",
        th.IntegerType,
        default=5,
        description=(
            "Pace of HubSpot search calls. HubSpot allows 5 per second per account and sends no "
            "headers for it, so the tap keeps to this budget itself."
        ),
    ),
    th.Property(
        "hubspot_associations_refresh_hours",
        th.NumberType,
        default=24,
        description=(
            "HubSpot associations have no modification time, so hubspot_associations is read in "
            "full, at most this often (0: every run); runs in between skip it."
        ),
    ),
    # -- Salesforce -------------------------------------------------------------------------
    th.Property(
        "salesforce_client_id",
        th.StringType,
        description="Salesforce connected app consumer key.",
    ),
    th.Property(
        "salesforce_client_secret",
        th.StringType,
        secret=True,
        description="Salesforce connected app consumer secret.",
    ),
    th.Property(
        "salesforce_refresh_token",
        th.StringType,
        secret=True,
        description=(
            "Salesforce OAuth refresh token. The org's instance URL comes from the token response."
        ),
    ),
    th.Property(
        "salesforce_login_url",
        th.StringType,
        default=SALESFORCE_LOGIN_URL,
        description=(
            "Salesforce login host: https://login.salesforce.com, https://test.salesforce.com "
            "for sandboxes, or a My Domain URL."
        ),
    ),
    th.Property(
        "salesforce_api_version",
        th.StringType,
        default=SALESFORCE_API_VERSION,
        description="Salesforce REST API version, e.g. 62.0.",
    ),
    th.Property(
        "salesforce_objects",
        th.ArrayType(th.StringType),
        description=(
            "sObjects to read besides Account, Contact, Opportunity, Case, Task and User, e.g. "
            "Subscription__c. Each becomes a stream salesforce_<Object>."
        ),
    ),
    th.Property(
        "salesforce_bulk_threshold",
        th.IntegerType,
        default=50_000,
        description=(
            "A first run of an object with more records than this uses Bulk API 2.0, smaller ones "
            "REST queryAll. 0 turns Bulk API off."
        ),
    ),
    th.Property(
        "salesforce_quota_reserve",
        th.IntegerType,
        default=1_000,
        description=(
            "Stop cleanly (with state saved) when fewer than this many calls of the org's daily "
            "API allocation are left, so the sync never eats the quota other integrations need."
        ),
    ),
    th.Property(
        "salesforce_session_lifetime_seconds",
        th.IntegerType,
        default=7200,
        description=(
            "The org's session timeout. Salesforce's token response has no expiry, so the tap "
            "refreshes this long after each token, and once on a 401."
        ),
    ),
    # -- Intercom ---------------------------------------------------------------------------
    th.Property(
        "intercom_access_token",
        th.StringType,
        secret=True,
        description="Intercom access token.",
    ),
    th.Property(
        "intercom_base_url",
        th.StringType,
        default=INTERCOM_URL,
        description=(
            "Intercom API host: https://api.intercom.io, https://api.eu.intercom.io or "
            "https://api.au.intercom.io."
        ),
    ),
    th.Property(
        "intercom_search_settle_seconds",
        th.NumberType,
        default=300,
        description=(
            "Contacts and conversations modified this recently are left for the next run, as "
            "Intercom's search takes a while to show new changes."
        ),
    ),
    # -- PII --------------------------------------------------------------------------------
    th.Property(
        "pii_keys",
        th.StringType,
        secret=True,
        description=(
            "AES-256 keys for PII fields: '<key_id>:<base64 of 32 bytes>,...'. Falls back to the "
            "CRM_PII_KEYS environment variable. Several keys let old data be read after a "
            "rotation. Generate one with `crm-pii-keygen`."
        ),
    ),
    th.Property(
        "pii_active_key",
        th.StringType,
        description="Key id that encrypts new values (default: the only key).",
    ),
    th.Property(
        "pii_hmac_keys",
        th.StringType,
        secret=True,
        description=(
            "HMAC keys ('<key_id>:<base64>,...', at least 32 bytes each) for the tokens written "
            "beside email and phone fields for joins and dedupe. Falls back to CRM_PII_HMAC_KEYS. "
            "Without them no tokens are written and mode 'hash' is unavailable."
        ),
    ),
    th.Property(
        "pii_active_hmac_key",
        th.StringType,
        description="HMAC key id that makes new tokens (default: the only HMAC key).",
    ),
    th.Property(
        "pii_default_mode",
        th.StringType(allowed_values=_PII_MODES),
        default=Mode.ENCRYPT.value,
        description=(
            "What happens to every field marked as PII unless pii_fields says otherwise: "
            "encrypt (default), hash (an HMAC token only), drop, or keep (plain text)."
        ),
    ),
    th.Property(
        "pii_fields",
        th.ObjectType(additional_properties=True),
        description=(
            "Per-stream, per-field PII rules over the built-in marks, e.g. "
            '{"hubspot_contacts": {"email": {"mode": "hash"}, "jobtitle": "name"}}. A rule is a '
            "kind (email, phone, name, address, free_text) or an object with kind, mode and token."
        ),
    ),
)


def epoch_ms(value: str | None) -> int | None:
    """``start_date`` (ISO 8601) as epoch ms."""
    return iso_to_ms(value) if value else None


def _has(config: Mapping[str, Any], *names: str) -> bool:
    return any(config.get(n) for n in names)


def configured_crms(config: Mapping[str, Any]) -> list[str]:
    """The CRMs to read: ``crms`` if set, otherwise those with credentials."""
    chosen = config.get("crms")
    if chosen:
        unknown = sorted(set(chosen) - set(CRMS))
        if unknown:
            raise ConfigError(f"unknown CRM {', '.join(unknown)}", setting="crms")
        return [c for c in CRMS if c in chosen]
    found = [
        crm
        for crm, names in (
            ("hubspot", ("hubspot_access_token", "hubspot_refresh_token")),
            ("salesforce", ("salesforce_refresh_token",)),
            ("intercom", ("intercom_access_token",)),
        )
        if _has(config, *names)
    ]
    if not found:
        raise ConfigError(
            "no CRM credentials configured: set hubspot_access_token (or the hubspot OAuth "
            "settings), salesforce_refresh_token with its client id and secret, or "
            "intercom_access_token",
            setting="crms",
        )
    return found


def _secret(config: Mapping[str, Any], name: str) -> Secret:
    return Secret(str(config.get(name) or ""))


def hubspot(config: Mapping[str, Any], **client_kw: Any) -> HubSpotConnector:
    base_url = str(config.get("hubspot_base_url") or HUBSPOT_URL)
    credentials: HubSpotOAuth | StaticToken
    if config.get("hubspot_refresh_token"):
        credentials = HubSpotOAuth(
            client_id=str(config.get("hubspot_client_id") or ""),
            client_secret=_secret(config, "hubspot_client_secret"),
            refresh_token=_secret(config, "hubspot_refresh_token"),
            base_url=base_url,
        )
    else:
        credentials = StaticToken(
            _secret(config, "hubspot_access_token"), setting="hubspot_access_token"
        )
    pacer = HubSpotPacer(
        search_per_second=int(config.get("hubspot_search_requests_per_second") or 5)
    )
    client = HubSpotClient(credentials, base_url=base_url, pacer=pacer, **client_kw)
    return HubSpotConnector(
        client,
        start_date=epoch_ms(config.get("start_date")),
        settle_ms=int(float(config.get("hubspot_search_settle_seconds", 10)) * 1000),
        associations_refresh_hours=float(config.get("hubspot_associations_refresh_hours", 24)),
    )


def salesforce(config: Mapping[str, Any], **client_kw: Any) -> SalesforceConnector:
    credentials = SalesforceOAuth(
        client_id=str(config.get("salesforce_client_id") or ""),
        client_secret=_secret(config, "salesforce_client_secret"),
        refresh_token=_secret(config, "salesforce_refresh_token"),
        login_url=str(config.get("salesforce_login_url") or SALESFORCE_LOGIN_URL),
        session_lifetime=float(config.get("salesforce_session_lifetime_seconds") or 7200),
    )
    client = SalesforceClient(
        credentials,
        api_version=str(config.get("salesforce_api_version") or SALESFORCE_API_VERSION),
        pacer=SalesforcePacer(min_remaining=int(config.get("salesforce_quota_reserve", 1000))),
        **client_kw,
    )
    threshold = int(config.get("salesforce_bulk_threshold", 50_000))
    return SalesforceConnector(
        client,
        objects=list(config.get("salesforce_objects") or ()),
        start_date=epoch_ms(config.get("start_date")),
        bulk_threshold=threshold if threshold > 0 else None,
    )


def intercom(config: Mapping[str, Any], **client_kw: Any) -> IntercomConnector:
    credentials = StaticToken(
        _secret(config, "intercom_access_token"), setting="intercom_access_token"
    )
    client = IntercomClient(
        credentials, base_url=str(config.get("intercom_base_url") or INTERCOM_URL), **client_kw
    )
    return IntercomConnector(
        client,
        start_date=epoch_ms(config.get("start_date")),
        settle_ms=int(float(config.get("intercom_search_settle_seconds", 300)) * 1000),
    )


BUILDERS: dict[str, Callable[..., Connector]] = {
    "hubspot": hubspot,
    "salesforce": salesforce,
    "intercom": intercom,
}


def connectors(config: Mapping[str, Any], **client_kw: Any) -> list[Connector]:
    return [BUILDERS[crm](config, **client_kw) for crm in configured_crms(config)]


def pii_policy(
    config: Mapping[str, Any],
    schemas: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str] | None = None,
) -> PiiPolicy:
    """The PII policy of a run: the schemas' ``x-pii`` marks with ``pii_default_mode``, then
    ``pii_fields`` on top. Keys are read only when some are configured; a policy that encrypts
    or tokenises without them fails naming the setting to fill."""
    env = os.environ if environ is None else environ
    default = str(config.get("pii_default_mode") or Mode.ENCRYPT.value)
    if default not in _PII_MODES:
        raise PiiConfigError("pii_default_mode", f"must be one of {', '.join(_PII_MODES)}")
    overrides: dict[str, dict[str, Any]] = {}
    if default != Mode.ENCRYPT.value:
        for stream, schema in schemas.items():
            overrides[stream] = {path: {"mode": default} for path, _ in pii_fields(schema)}
    for stream, fields in dict(config.get("pii_fields") or {}).items():
        if not isinstance(fields, Mapping):
            raise PiiConfigError(f"pii_fields.{stream}", "must map field paths to rules")
        overrides.setdefault(stream, {}).update(fields)
    has_keys = bool(config.get(SETTING_KEYS[0]) or env.get(SETTING_KEYS[1]))
    keyring = KeyRing.from_settings(config, env) if has_keys else None
    return PiiPolicy.from_schemas(keyring, schemas, overrides)
