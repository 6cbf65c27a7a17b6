"""tap-crm: HubSpot, Salesforce and Intercom as one Singer tap.

The reading is done by the connector layer (``crm_connectors``); this module wires settings to
connectors, connectors' resources to streams (:mod:`tap_crm.streams`), and protects the run:
PII transformed before any record is written, secrets masked in every log line, and connector
errors reported as one actionable line instead of a traceback.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError

from crm_connectors.base import Connector, Resource
from crm_connectors.errors import ConfigError, CrmError, MissingScopes, NotFound
from crm_connectors.pii import DEFAULT_LOGGERS, RedactingFilter, redact_in_logs

from . import settings
from .streams import CrmStream, with_deleted_flag
from .writer import OrjsonWriter

log = logging.getLogger("tap_crm")

#: Loggers whose records pass the redaction filter (besides the root logger's handlers).
LOGGERS = DEFAULT_LOGGERS
#: Settings declared ``secret``: masked in every log line and every config error.
SECRET_SETTINGS = tuple(
    name
    for name, spec in settings.CONFIG_SCHEMA.to_dict()["properties"].items()
    if spec.get("secret")
)


class TapCrm(Tap):
    """Customer data from HubSpot, Salesforce and Intercom, incrementally, with PII protected."""

    name = "tap-crm"
    package_name = "crm-health-sync"
    config_jsonschema = settings.CONFIG_SCHEMA.to_dict()
    message_writer_class = OrjsonWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connectors: list[Connector] = []
        self._quota_stopped: set[str] = set()
        super().__init__(*args, **kwargs)

    # -- discovery -------------------------------------------------------------------------------

    def discover_streams(self) -> Sequence[Stream]:
        self._protect_logs()
        self._connectors = settings.connectors(self.config)
        weakref.finalize(self, _close, self._connectors)
        found: list[tuple[str, Resource, dict[str, Any]]] = []
        for connector in self._connectors:
            for resource in connector.resources():
                schema = self._discover(connector.vendor, resource)
                if schema is not None:
                    found.append((connector.vendor, resource, with_deleted_flag(schema)))
        policy = settings.pii_policy(self.config, {r.name: s for _, r, s in found})
        if policy.keyring is not None:
            redact_in_logs(policy.keyring.secret_strings())
        return [
            CrmStream(
                self,
                resource,
                policy.plan(resource.name),
                policy.transform_schema(resource.name, schema),
                vendor=vendor,
                stopped=self._quota_stopped,
            )
            for vendor, resource, schema in found
        ]

    def _discover(self, vendor: str, resource: Resource) -> dict[str, Any] | None:
        """The resource's schema; None (with a warning) when the credentials lack its scopes."""
        try:
            return resource.schema()
        except MissingScopes as exc:
            log.warning(
                "%s is left out: the %s credentials lack %s",
                resource.name,
                vendor,
                ", ".join(exc.scopes) or "a required scope",
            )
            return None
        except NotFound as exc:
            if vendor == "salesforce":
                raise ConfigError(
                    f"Salesforce has no object {resource.name.removeprefix('salesforce_')!r}"
                    " (check its API name, e.g. Subscription__c, and the user's access)",
                    setting="salesforce_objects",
                ) from exc
            raise

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's config validation, with secret values masked in its messages.

        jsonschema's messages quote the offending value (``{'k1': '<key>'} is not of type
        'string'``) and the SDK's command line logs each one at ERROR, before discovery installs
        the log redaction: a secret of the wrong type (keys as a mapping, a numeric token) would
        be printed."""
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise ConfigValidationError(
                str(exc), errors=self._mask_secrets(exc.errors), schema=exc.schema
            ) from None
        return self._mask_secrets(errors)

    def _mask_secrets(self, messages: list[str]) -> list[str]:
        if not messages:
            return messages
        redactor = RedactingFilter(
            text for name in SECRET_SETTINGS for text in _texts(self._config.get(name))
        )
        return [redactor.redact(m) for m in messages]

    def _protect_logs(self) -> None:
        # One filter per process, whatever the number of tap instances (tests make many): each
        # adds its secrets; installing again only covers handlers added since.
        redact_in_logs(str(self.config[n]) for n in SECRET_SETTINGS if self.config.get(n))
        # httpx logs every request at INFO; the connector layer logs retries and waits itself.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, log.getEffectiveLevel()))


def _texts(value: Any) -> Iterator[str]:
    """Every text a setting's value may be quoted as: strings (also ``repr``-escaped), numbers,
    and the values inside mappings and lists."""
    if isinstance(value, str):
        yield value
        yield repr(value)[1:-1]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _close(connectors: list[Connector]) -> None:
    for connector in connectors:
        connector.close()


def main() -> None:
    """``tap-crm``: the singer-sdk command line, with connector errors as one clear line."""
    try:
        TapCrm.cli()
    except CrmError as exc:
        # CrmError messages name vendor, route, status, code and the setting to fix, never
        # tokens or response bodies (crm_connectors.errors).
        log.error("tap-crm: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
