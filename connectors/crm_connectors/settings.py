"""Settings as a connector declares them: flat names, one JSON Schema each.

Each CRM's ``settings.py`` declares ``SETTINGS = {"<crm>_<name>": setting(...), ...}``: one
Meltano setting, one ``TAP_CRM_<NAME>`` / ``TARGET_HEALTH_<NAME>`` environment variable and one
line of ``--about`` each. The schemas have the form singer-sdk's typing helpers produce
(nullable types, ``secret`` and ``writeOnly`` on credentials), so the plugins list them as their
own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .secrets import Secret
from .timefmt import iso_to_ms

_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object"})


def setting(
    kind: str,
    description: str,
    *,
    default: Any = None,
    secret: bool = False,
    items: str | None = None,
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON Schema of one setting: ``kind`` is a JSON type; ``items`` the item type of an
    array; ``options`` the allowed values of a string; ``secret`` marks credentials and keys
    (masked in logs, ``sensitive`` in Meltano)."""
    if kind not in _TYPES:
        raise ValueError(f"unknown setting type {kind!r}")
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if kind == "array":
        schema["items"] = {"type": [items or "string"]}
    if kind == "object":
        schema |= {"properties": {}, "additionalProperties": True}
    if options:
        schema["enum"] = list(options)
    if default is not None:
        schema["default"] = default
    schema["description"] = description
    if secret:
        schema |= {"secret": True, "writeOnly": True}
    return schema


def secret(config: Mapping[str, Any], name: str) -> Secret:
    """A credential setting as a :class:`Secret` (empty when unset)."""
    return Secret(str(config.get(name) or ""))


def has_any(config: Mapping[str, Any], *names: str) -> bool:
    return any(config.get(n) for n in names)


def epoch_ms(config: Mapping[str, Any]) -> int | None:
    """The shared ``start_date`` (ISO 8601) as epoch ms."""
    value = config.get("start_date")
    return iso_to_ms(str(value)) if value else None
