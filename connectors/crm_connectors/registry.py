"""The connectors installed: every :class:`~crm_connectors.base.ConnectorSpec` registered under
the entry-point group ``crm_connectors``.

A CRM joins with one line in its distribution's ``pyproject.toml``::

    [project.entry-points.crm_connectors]
    zendesk = "crm_connectors.zendesk:SPEC"

The entry point's name must be the spec's ``name``. Specs are listed in name order; the list is
read once per process (:func:`specs`), and a spec that fails to load is an error naming it, not
a silently missing CRM.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from . import roles
from .base import ConnectorSpec
from .errors import ConfigError

GROUP = "crm_connectors"


class RegistryError(Exception):
    """An installed connector cannot be loaded, or is declared inconsistently."""


@functools.cache
def _load() -> tuple[ConnectorSpec, ...]:
    found: dict[str, ConnectorSpec] = {}
    for ep in entry_points(group=GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # an installed plugin's import error: name it
            raise RegistryError(
                f"connector {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(spec, ConnectorSpec):
            raise RegistryError(f"entry point {ep.name!r} ({ep.value}) is not a ConnectorSpec")
        if spec.name != ep.name:
            raise RegistryError(f"entry point {ep.name!r} holds the spec of {spec.name!r}")
        if spec.name in found:
            continue  # the same distribution seen twice on sys.path
        found[spec.name] = spec
    return tuple(found[name] for name in sorted(found))


def specs() -> tuple[ConnectorSpec, ...]:
    """Every installed connector, in name order."""
    return _load()


def names() -> tuple[str, ...]:
    return tuple(s.name for s in specs())


def get(name: str) -> ConnectorSpec:
    for spec in specs():
        if spec.name == name:
            return spec
    raise KeyError(name)


def configured(config: Mapping[str, Any]) -> list[ConnectorSpec]:
    """The CRMs a run works with: those named in the ``crms`` setting (in its order), else every
    CRM whose credentials are set (in name order). A ConfigError names the setting when there
    are none or one is unknown."""
    chosen = config.get("crms")
    known = names()
    if chosen:
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown CRM {', '.join(unknown)} (installed: {', '.join(known)})",
                setting="crms",
            )
        return [get(name) for name in dict.fromkeys(chosen)]
    found = [s for s in specs() if s.configured(config)]
    if not found:
        raise ConfigError(
            "no CRM credentials configured: set " + ", or ".join(s.needs for s in specs()),
            setting="crms",
        )
    return found


def settings(*, writer: bool = False) -> dict[str, dict[str, Any]]:
    """Every connector's settings, by name: for the reader, with each field mapping
    (``<name>_field_mapping``, crm_connectors.roles: the loader gets it in the SCHEMA); with
    ``writer``, for the loader, with write-back's settings instead."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs():
        mapping = (
            {roles.setting_name(spec.name): roles.mapping_setting(spec.name, spec.roles)}
            if spec.roles and not writer
            else {}
        )
        for group in (spec.settings, mapping, spec.writer_settings if writer else {}):
            for name, schema in group.items():
                if name in out:
                    raise RegistryError(f"setting {name!r} is declared twice ({spec.name})")
                out[name] = dict(schema)
    return out
