"""From the plugins' streams to the canonical model (crm_connectors.canonical; schemas/v1/*.json).

Each installed CRM maps its own streams (its folder's ``canonical.py``, through the connector
registry), reading the facts a company keeps in fields of its own where the stream's SCHEMA marks
them (crm_connectors.roles: tap-crm marks them from ``<crm>_field_mapping``); product usage,
which comes from no CRM (a CSV file, a warehouse tap), is mapped here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from crm_connectors import registry, roles
from crm_connectors.base import ConnectorSpec, Mapper
from crm_connectors.canonical import Mapped, Parent, Row, account_key, date, domain_of, integer

__all__ = ["Mapped", "Parent", "Row", "account_key", "domain_of", "mapper_for", "unmapped"]

Record = Mapping[str, Any]


# -- product usage (any source: a CSV tap, a warehouse tap...) -----------------------------------


def usage(r: Record) -> list[Mapped]:
    ref = account_key(r.get("account_external_id"), r.get("domain"), "")
    month = date(r.get("month"))
    data = {
        "key": f"usage:{ref}:{month}",
        "crm": "usage",
        "deleted": bool(r.get("_sdc_deleted_at")),
        "modified": None,
        "account_ref": ref,
        "month": month,
        "active_users": integer(r.get("active_users")),
        "seats": integer(r.get("seats")),
        "logins": integer(r.get("logins")),
        "features_adopted": integer(r.get("features_adopted")),
    }
    return [Row("usage", data)]


def mapper_for(stream: str, schema: Mapping[str, Any]) -> Mapper | None:
    """The mapping of ``stream`` (its SCHEMA message's JSON Schema): its CRM's, bound to the
    roles the schema marks; ``usage``'s; None for a stream nothing maps (accepted and counted,
    not stored)."""
    if stream == "usage":
        return usage
    spec = _spec_of(stream)
    if spec is None:
        return None
    marks = roles.marks_of(schema)
    if (fn := spec.mapping.get(stream)) is not None:
        return functools.partial(fn, marks)
    entity = schema.get(roles.ENTITY)
    if isinstance(entity, str) and (named := spec.entity_mapping.get(entity)) is not None:
        return functools.partial(named, stream.removeprefix(f"{spec.name}_"), marks)
    return None


def unmapped(stream: str, schema: Mapping[str, Any]) -> list[str]:
    """The roles on ``stream``'s object that its schema marks no field for (what its CRM's
    records cannot say about an account), for the run's report."""
    spec = _spec_of(stream)
    if spec is None or stream not in spec.mapping:
        return []
    obj = stream.removeprefix(f"{spec.name}_")
    marked = roles.marks_of(schema)
    return [name for name, role in spec.roles.items() if role.obj == obj and name not in marked]


@functools.cache
def _specs() -> dict[str, ConnectorSpec]:
    return {spec.name: spec for spec in registry.specs()}


def _spec_of(stream: str) -> ConnectorSpec | None:
    crm, sep, _ = stream.partition("_")
    return _specs().get(crm) if sep else None
