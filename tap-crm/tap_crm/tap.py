"""tap-crm: every installed CRM connector as one Singer tap.

The reading is done by the connector layer (``crm_connectors``, one folder per CRM, found
through its registry); this module wires settings to connectors, connectors' resources to
streams (:mod:`tap_crm.streams`), and protects the run: PII transformed before any record is
written, secrets masked in every log line, and connector errors reported as one actionable line
instead of a traceback.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import weakref
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from singer_sdk import Stream, Tap

from crm_connectors import registry, roles
from crm_connectors import settings as crm_settings
from crm_connectors.base import CatalogTyped, Connector, Resource
from crm_connectors.errors import ConfigError, CrmError, MissingScopes, Unavailable
from crm_connectors.http import quiet_request_logs
from crm_connectors.pii import DEFAULT_LOGGERS, redact_in_logs

from . import settings
from .streams import CrmStream, with_annotations, with_deleted_flag
from .writer import OrjsonWriter

log = logging.getLogger("tap_crm")

#: Loggers whose records pass the redaction filter (besides the root logger's handlers).
LOGGERS = DEFAULT_LOGGERS
#: Settings declared ``secret``: masked in every log line and every config error.
SECRET_SETTINGS = tuple(
    name for name, spec in settings.CONFIG_SCHEMA["properties"].items() if spec.get("secret")
)
#: The stream-level metadata key (breadcrumb ``[]``) under which discovery writes the field types
#: it learned from the CRM's metadata APIs, ``{"version": 1, "types": ...}``. singer-sdk's
#: Catalog drops unknown keys, so the tap writes and reads it in the raw catalog JSON; Meltano
#: edits catalogs as JSON and keeps it (its rules only set the keys they name).
TYPES_KEY = "tap-crm-field-types"
TYPES_VERSION = 1


class TapCrm(Tap):
    """Customer data from the CRMs, incrementally, with PII protected."""

    name = "tap-crm"
    package_name = "crm-health-sync"
    config_jsonschema = copy.deepcopy(settings.CONFIG_SCHEMA)  # the SDK adds its own settings
    message_writer_class = OrjsonWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connectors: list[Connector] = []
        self._quota_stopped: set[str] = set()
        self._failed: dict[str, CrmError] = {}  # vendor -> its first error (see CrmStream)
        # Before the SDK's init: without a catalog it discovers from there.
        self._saved_types = _saved_types(kwargs.get("catalog"))
        super().__init__(*args, **kwargs)

    # -- discovery -------------------------------------------------------------------------------

    def discover_streams(self) -> Sequence[Stream]:
        self._protect_logs()
        self._connectors, failed = settings.connect_each(self.config)
        weakref.finalize(self, _close, self._connectors)
        for vendor, exc in failed.items():
            self._failed.setdefault(vendor, exc)
            log.error("tap-crm: the %s streams are left out: %s", vendor, exc)
        found: list[tuple[str, Resource, dict[str, Any]]] = []
        unusable: list[str] = []
        for connector in self._connectors:
            for resource in connector.resources():
                if connector.vendor in self._failed:
                    break
                if not self._wanted(resource.name):
                    continue
                if not self._types_from_catalog(resource):
                    unusable.append(resource.name)
                schema = self._discover(connector.vendor, resource)
                if schema is not None:
                    found.append((connector.vendor, resource, with_deleted_flag(schema)))
        if unusable:
            log.info(
                "tap-crm: the catalog's field types for %s are unusable; they are read from"
                " the CRM's metadata API instead (run discovery again to save those calls)",
                ", ".join(unusable),
            )
        self._mark_roles(found)
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
                failed=self._failed,
            )
            for vendor, resource, schema in found
        ]

    def setup_mapper(self) -> None:
        """singer-sdk's stream maps, their SCHEMA messages carrying the annotations its Catalog
        drops (``x-*``: the field mapping's roles, which target-health maps by, and PII marks),
        from this run's settings whatever catalog the run was given."""
        super().setup_mapper()
        for name, maps in self.mapper.stream_maps.items():
            if (stream := self.streams.get(name)) is None:
                continue
            for stream_map in maps:
                stream_map.transformed_schema = with_annotations(
                    stream.schema, stream_map.transformed_schema
                )

    def _mark_roles(self, found: list[tuple[str, Resource, dict[str, Any]]]) -> None:
        """Mark each CRM's mapped fields in its schemas (crm_connectors.roles): a field the
        field mapping names that the CRM lacks stops the run (ConfigError); the roles no field
        holds are said once, with what they feed."""
        for connector in self._connectors:
            spec = registry.get(connector.vendor)
            if not spec.roles:
                continue
            schemas = {r.name: schema for v, r, schema in found if v == connector.vendor}
            unmapped = roles.mark(spec.name, spec.roles, self.config, schemas, spec.label)
            if unmapped and schemas:
                log.info(
                    "tap-crm: %s: no field holds %s (set %s to map them)",
                    spec.label,
                    "; ".join(f"{r}, for {roles.FEEDS.get(r, r)}" for r in unmapped),
                    roles.setting_name(spec.name),
                )

    def _wanted(self, stream: str) -> bool:
        """Whether a run needs ``stream``: always without an input catalog (discovery), else
        only when the catalog holds and selects it, so a run asks no metadata API about objects
        it will not read (and one the org lacks stops nothing)."""
        catalog = self.input_catalog
        if catalog is None:
            return True
        entry = catalog.get_stream(stream)
        return entry is not None and entry.metadata.resolve_selection()[()]

    def _types_from_catalog(self, resource: Resource) -> bool:
        """Hand ``resource`` the field types the input catalog holds for it, if any, so its
        schema and reads ask no metadata API. False when the catalog's types are unusable
        (the resource then asks the API, as it does when the catalog has none)."""
        saved = self._saved_types.get(resource.name)
        if saved is None or not isinstance(resource, CatalogTyped):
            return True
        return (
            isinstance(saved, dict)
            and saved.get("version") == TYPES_VERSION
            and resource.use_catalog_types(saved.get("types"))
        )

    @property
    def catalog_dict(self) -> dict[str, Any]:
        """The SDK's catalog, with each stream's CRM field types in its stream metadata
        (:data:`TYPES_KEY`), so a run given this catalog does not ask for them again."""
        catalog: dict[str, Any] = super().catalog_dict
        for entry in catalog.get("streams") or []:
            stream = self.streams.get(entry["tap_stream_id"])
            if stream is not None:  # the field mapping's roles and PII marks, for people to see
                entry["schema"] = with_annotations(stream.schema, entry["schema"])
            resource = getattr(stream, "resource", None)
            if not isinstance(resource, CatalogTyped):
                continue
            types = resource.catalog_types()
            if types is None:
                continue
            for meta in entry.get("metadata") or []:
                if meta.get("breadcrumb") == []:
                    meta.setdefault("metadata", {})[TYPES_KEY] = {
                        "version": TYPES_VERSION,
                        "types": types,
                    }
        return catalog

    def _discover(self, vendor: str, resource: Resource) -> dict[str, Any] | None:
        """The resource's schema; None (with a warning) when the credentials lack its scopes,
        None (the vendor marked failed) when its metadata cannot be read: a sync goes on with
        the other CRMs and exits non-zero; ``--discover`` fails (:meth:`run_discovery`). A
        wrong setting (:class:`ConfigError`) stops the run at once."""
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
        except Unavailable as exc:
            log.warning("%s is left out: %s", resource.name, exc)
            return None
        except ConfigError:
            raise  # a setting to fix: nothing is read until it is
        except CrmError as exc:
            self._failed.setdefault(vendor, exc)
            log.error("tap-crm: the %s streams are left out: %s", vendor, exc)
            return None

    def run_discovery(self) -> str:
        """A catalog without a CRM that could not be read would drop its streams from the
        project's selection: no catalog then, the error instead."""
        self.streams  # noqa: B018 (discovers)
        self._raise_failures(finished=False)
        return super().run_discovery()

    def sync_all(self) -> None:  # type: ignore[misc]  # final in singer-sdk: called whole
        """Every stream; a CRM that failed stops only its own streams, and the run then exits
        non-zero naming it, after the other CRMs' records and STATE are out. (singer-sdk marks
        this method final; the override runs it unchanged and only checks afterwards.)"""
        super().sync_all()
        self._raise_failures(finished=True)

    def _raise_failures(self, *, finished: bool) -> None:
        if not self._failed:
            return
        # A CrmError's text starts with its vendor and route already.
        text = "; ".join(
            str(exc) if exc.vendor else f"{vendor}: {exc}" for vendor, exc in self._failed.items()
        )
        done = sorted({c.vendor for c in self._connectors} - set(self._failed))  # connected
        if finished and done:
            text += f"; the other CRMs' streams finished ({', '.join(done)})"
        raise CrmError(text)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's check of the settings, as one ConfigError line that names the setting
        and never quotes its value: jsonschema's messages do (``{'k1': '<key>'} is not of type
        'string'``), and the SDK logs each on its own line before discovery installs the log
        redaction. Also in discovery, where the SDK only warns."""
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        crm_settings.read_numbers(self._config, schema)
        crm_settings.check(self._config, schema)
        return super()._validate_config(raise_errors=raise_errors)  # it fills the defaults

    def _protect_logs(self) -> None:
        # One filter per process, whatever the number of tap instances (tests make many): each
        # adds its secrets; installing again only covers handlers added since.
        redact_in_logs(str(self.config[n]) for n in SECRET_SETTINGS if self.config.get(n))
        quiet_request_logs(log.getEffectiveLevel())


def _saved_types(catalog: Any) -> dict[str, Any]:
    """Stream id -> the :data:`TYPES_KEY` value of the input catalog (a dict or a path, raw
    JSON: the SDK's Catalog has dropped the key by the time it is parsed). Empty without a
    catalog, or for a Catalog object."""
    if isinstance(catalog, str | PurePath):
        try:
            with open(catalog, encoding="utf-8") as file:
                catalog = json.load(file)
        except (OSError, ValueError):
            return {}  # the SDK reports an unreadable catalog itself
    if not isinstance(catalog, Mapping):
        return {}
    saved: dict[str, Any] = {}
    streams = catalog.get("streams")
    for entry in streams if isinstance(streams, list) else []:
        if not isinstance(entry, Mapping):
            continue
        for meta in entry.get("metadata") or []:
            if (
                isinstance(meta, Mapping)
                and meta.get("breadcrumb") == []
                and isinstance(meta.get("metadata"), Mapping)
                and TYPES_KEY in meta["metadata"]
            ):
                saved[str(entry.get("tap_stream_id"))] = meta["metadata"][TYPES_KEY]
    return saved


def _close(connectors: list[Connector]) -> None:
    for connector in connectors:
        connector.close()


def main() -> None:
    """``tap-crm``: the singer-sdk command line, with a wrong setting or file (exit 2) and
    connector errors (exit 1) as one clear line."""
    command = TapCrm.cli  # once: each access sets the SDK's logging up again
    if problem := crm_settings.check_command_line(sys.argv[1:], command):
        log.error("tap-crm: %s", problem)
        sys.exit(2)
    try:
        command()
    except ConfigError as exc:
        log.error("tap-crm: %s", exc)
        sys.exit(2)
    except CrmError as exc:
        # CrmError messages name vendor, route, status, code and the setting to fix, never
        # tokens or response bodies (crm_connectors.errors).
        log.error("tap-crm: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
