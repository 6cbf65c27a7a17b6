"""Settings as a connector declares them: flat names, one JSON Schema each.

Each CRM's ``settings.py`` declares ``SETTINGS = {"<crm>_<name>": setting(...), ...}``: one
Meltano setting, one ``TAP_CRM_<NAME>`` / ``TARGET_HEALTH_<NAME>`` environment variable and one
line of ``--about`` each. The schemas have the form singer-sdk's typing helpers produce
(nullable types, ``secret`` and ``writeOnly`` on credentials), so the plugins list them as their
own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from .errors import ConfigError
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
    if not value:
        return None
    try:
        return iso_to_ms(str(value))
    except ValueError:
        raise ConfigError("not an ISO 8601 time (e.g. 2024-01-31T00:00:00Z)",
                          setting="start_date") from None  # fmt: skip


_JSON_NAMES = {str: "a text", bool: "true/false", int: "a number", float: "a number",
               dict: "an object", list: "a list", type(None): "null"}  # fmt: skip
_ARTICLE = {"string": "a text", "integer": "a whole number", "number": "a number",
            "boolean": "true or false", "object": "an object", "array": "a list"}  # fmt: skip


def read_numbers(config: MutableMapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Each setting the schema types as a number (not text) that ``config`` gives as the text of
    one (``"0.5"``) as that number: Meltano passes numbers so (their Meltano kind is
    ``string``, as its ``decimal`` kind fails on a value from the environment: plugins/
    generate.py)."""
    for name, spec in (schema.get("properties") or {}).items():
        kinds = spec.get("type") if isinstance(spec, Mapping) else None
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or ())
        value = config.get(name)
        if "number" in kinds and "string" not in kinds and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue  # check() names it
            if math.isfinite(number):
                config[name] = number


def check(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """``config`` against the plugin's settings ``schema``, before any of it is used: the first
    setting it rejects is a ConfigError naming the setting and what it must be, never its value
    (which may be a secret). singer-sdk validates only outside discovery, and then logs every
    jsonschema message, values quoted, on lines of their own."""
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(dict(config)),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if not errors:
        return
    error = errors[0]
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [n for n in error.validator_value if n not in (error.instance or {})]
        path, what = [*path, missing[0] if missing else "?"], "is required"
    elif error.validator == "type":
        kinds = error.validator_value
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        want = " or ".join(_ARTICLE.get(k, k) for k in kinds if k != "null")
        got = _JSON_NAMES.get(type(error.instance), type(error.instance).__name__)
        what = f"must be {want} (got {got})"
    elif error.validator == "enum":
        what = "must be one of " + ", ".join(str(v) for v in error.validator_value)
    elif error.validator == "pattern":
        what = f"is not in the form it takes ({error.validator_value})"
    elif error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        what = f"must be {_BOUNDS[error.validator]} {error.validator_value}"
    else:
        what = f"does not fit the setting's schema ({error.validator})"
    if len(errors) > 1:
        what += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    raise ConfigError(what, setting=name or "config")


_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}  # fmt: skip


def check_command_line(argv: Sequence[str], command: Any = None) -> str | None:
    """What is wrong with a Singer command line, or None: an option that ``command`` (the SDK's
    click command, when given) does not take, a JSON file it names (``--config``, ``--state``,
    ``--catalog``; ``--config ENV`` reads the environment) missing or not a JSON object. One
    line naming the option and the file, for the plugins to print instead of the SDK's
    traceback or the usage block of its command-line library."""
    args = list(argv)
    options = [o for p in getattr(command, "params", ()) for o in (*p.opts, *p.secondary_opts)]
    for i, arg in enumerate(args):
        option, eq, path = arg.partition("=")
        if options and option.startswith("--") and option not in (*options, "--help"):
            return f"no option {option} (the options are {', '.join(options)}; see --help)"
        if option not in ("--config", "--state", "--catalog"):
            continue
        if not eq:
            if i + 1 >= len(args):
                continue  # the SDK's own usage error
            path = args[i + 1]
        if option == "--config" and path == "ENV":
            continue
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            return f"{option} {path}: {exc.strerror or type(exc).__name__}"
        except ValueError as exc:
            return f"{option} {path}: not a JSON file ({type(exc).__name__})"
        if not isinstance(data, dict):
            return f"{option} {path}: not a JSON object"
    return None
