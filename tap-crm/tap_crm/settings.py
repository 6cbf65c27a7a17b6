"""tap-crm's settings and how they become connectors.

The tap's own settings (which CRMs, the start date, PII) are declared here; each installed CRM
declares its own in its connector folder (``crm_connectors.<crm>.settings``), found through the
connector registry. Settings are flat (``hubspot_access_token``...) so that each is one Meltano
setting, one ``TAP_CRM_<NAME>`` environment variable and one line of ``tap-crm --about``. Every
credential and key is secret here and ``sensitive: true`` in meltano.yml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from singer_sdk import typing as th

from crm_connectors import registry
from crm_connectors.base import Connector
from crm_connectors.errors import ConfigError, CrmError
from crm_connectors.pii import (
    SETTING_KEYS,
    KeyRing,
    Mode,
    PiiConfigError,
    PiiPolicy,
    pii_fields,
)

_PII_MODES = [m.value for m in Mode]

_CRMS = registry.names()

TAP_SETTINGS = th.PropertiesList(
    th.Property(
        "crms",
        th.ArrayType(th.StringType(allowed_values=list(_CRMS))),
        description=(
            f"Which CRMs to read: any of {', '.join(_CRMS)}. Default: every CRM whose "
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
            '{"<crm>_contacts": {"email": {"mode": "hash"}, "jobtitle": "name"}}. A rule is a '
            "kind (email, phone, name, address, free_text) or an object with kind, mode and token."
        ),
    ),
)
#: Every setting of the tap: its own (first: crms and start_date, last: PII) and each installed
#: CRM's, in the registry's order.
CONFIG_SCHEMA: dict[str, Any] = TAP_SETTINGS.to_dict()
_own = CONFIG_SCHEMA["properties"]
CONFIG_SCHEMA["properties"] = (
    {k: _own[k] for k in ("crms", "start_date")}
    | registry.settings()
    | {k: v for k, v in _own.items() if k not in ("crms", "start_date")}
)


def configured_crms(config: Mapping[str, Any]) -> list[str]:
    """The CRMs to read: ``crms`` if set, otherwise those with credentials."""
    return [spec.name for spec in registry.configured(config)]


def connect_each(
    config: Mapping[str, Any], **client_kw: Any
) -> tuple[list[Connector], dict[str, CrmError]]:
    """Each configured CRM's connector, and the CRMs whose connector could not be made (a
    Salesforce login refused, its host down), by name. A wrong setting (ConfigError) raises:
    nothing runs until it is fixed."""
    made: list[Connector] = []
    failed: dict[str, CrmError] = {}
    for spec in registry.configured(config):
        try:
            made.append(spec.connect(config, **client_kw))
        except ConfigError:
            raise
        except CrmError as exc:
            failed[spec.name] = exc
    return made, failed


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
