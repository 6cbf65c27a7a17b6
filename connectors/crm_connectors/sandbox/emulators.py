"""The emulators the sandbox serves: one per installed connector that names one.

A connector's spec points at its emulator by name (``ConnectorSpec.emulator``,
``"crm_connectors.<crm>.emulator:EMULATOR"``), so the plugins never import it; the sandbox
loads it here. An :class:`EmulatorSpec` says what the sandbox needs of a CRM: the app that
answers its API, the seeder that writes the world into it, the well-known sandbox credentials,
the connector settings that point a client at it, its port, and its part of the world.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import registry

if TYPE_CHECKING:
    from .http import VendorApp
    from .seed import VendorSeeder
    from .world import CrmProfile


@dataclass(frozen=True)
class Expected:
    """What a full read of one stream must give: every record once, these flagged deleted."""

    ids: frozenset[str]
    deleted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KitHooks:
    """What the conformance kit (crm_connectors.testing) needs to know of an emulator to check
    its connector against it."""

    #: ``expected(store)``: per checked stream, the records a full read returns.
    expected: Callable[[Any], Mapping[str, Expected]]
    #: ``edit(url, credentials, stream, ids)``: change those records through the vendor's own
    #: API, as a CRM user would; False when the stream is not one it edits.
    edit: Callable[[str, Mapping[str, Any], str, list[str]], bool]
    #: The stream of the account object (write-back's records).
    account_stream: str
    #: Per stream, custom fields discovery must type: ``{stream: {path: JSON type}}``, the path
    #: dotted into nested objects (``custom_attributes.seats``).
    typed_fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Sandbox stats routes (``METHOD template``) of the writer's write calls.
    write_routes: frozenset[str] = frozenset()
    #: App options under which the credentials may not create fields.
    deny_writes: Mapping[str, Any] = field(default_factory=dict)
    #: A glob of the data API's paths (faults there, not on token endpoints).
    api_paths: str = "*"
    #: Seconds to let pass on the sandbox's clock after an edit before it is readable (an
    #: export's exclusion window).
    settle_seconds: float = 0.0
    #: The API's passing throttles always say how long to wait: one without ``Retry-After``
    #: means a quota is used up (a fatal error), so the faults check leaves it out.
    bare_throttle_is_quota: bool = False


@dataclass(frozen=True)
class EmulatorSpec:
    name: str
    #: The emulator of the vendor's API (a VendorApp subclass).
    app: type[VendorApp]
    #: ``seeder(store, world_spec)``: writes world bundles into this CRM's records.
    seeder: Callable[..., VendorSeeder]
    #: The sandbox's well-known credentials (``crm-sandbox credentials``): static tokens under
    #: ``private_app_token`` / ``access_token``, an OAuth client under ``client_id``,
    #: ``client_secret`` and ``refresh_token``, and ``access_token_ttl``.
    credentials: Mapping[str, Any]
    #: ``client_settings(url, credentials)``: the connector's settings for a sandbox at ``url``.
    client_settings: Callable[[str, Mapping[str, Any]], dict[str, Any]]
    #: The listener's port is the sandbox's base port plus this (unique per CRM).
    port_offset: int
    #: Which accounts live in this CRM, and what they hold there.
    world: CrmProfile
    #: The conformance kit's hooks (None: the kit checks only what needs no hook).
    kit: KitHooks | None = None
    #: Per world profile (WorldSpec.profile), where its records keep the customer facts: the
    #: ``<name>_field_mapping`` a team with that CRM would set (crm_connectors.roles); none for
    #: a profile not listed (vanilla: nothing to map).
    field_mappings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@functools.cache
def emulators() -> dict[str, EmulatorSpec]:
    """Name -> emulator, for every installed connector with one, in port order."""
    found: list[EmulatorSpec] = []
    for spec in registry.specs():
        if not spec.emulator:
            continue
        module, _, attr = spec.emulator.partition(":")
        emulator = getattr(importlib.import_module(module), attr)
        if not isinstance(emulator, EmulatorSpec) or emulator.name != spec.name:
            raise registry.RegistryError(
                f"{spec.name}: {spec.emulator} is not the EmulatorSpec of {spec.name!r}"
            )
        found.append(emulator)
    offsets = [e.port_offset for e in found]
    if len(set(offsets)) != len(offsets) or min(offsets, default=1) < 1:
        raise registry.RegistryError(f"emulator port offsets clash: {offsets}")
    return {e.name: e for e in sorted(found, key=lambda e: e.port_offset)}


def vendors() -> tuple[str, ...]:
    return tuple(emulators())


def credentials() -> dict[str, dict[str, Any]]:
    """The well-known sandbox credentials of every emulator (fresh copies)."""
    return {name: dict(e.credentials) for name, e in emulators().items()}


def client_settings(
    urls: Mapping[str, str], crms: tuple[str, ...] | None = None, profile: str = "seeded"
) -> dict[str, Any]:
    """Connector settings for the CRMs ``crms`` (default: every one ``urls`` serves) of a
    sandbox whose listeners are at ``urls``, with its well-known credentials and the field
    mapping of its world ``profile``."""
    out: dict[str, Any] = {}
    for name, e in emulators().items():
        if name in urls and (crms is None or name in crms):
            out |= e.client_settings(urls[name], e.credentials)
            if (mapping := e.field_mappings.get(profile)) is not None:
                out[f"{name}_field_mapping"] = dict(mapping)
    return out
