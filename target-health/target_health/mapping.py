"""From the plugins' streams to the canonical model (crm_connectors.canonical; schemas/v1/*.json).

Each installed CRM maps its own streams (its folder's ``canonical.py``, through the connector
registry); product usage, which comes from no CRM (a CSV file, a warehouse tap), is mapped here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from crm_connectors import registry
from crm_connectors.base import Mapper
from crm_connectors.canonical import Mapped, Parent, Row, account_key, date, domain_of, integer

__all__ = ["Mapped", "Parent", "Row", "account_key", "domain_of", "mappers"]

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


@functools.cache
def mappers() -> dict[str, Mapper]:
    """Stream name -> mapper, for every installed CRM and ``usage``. Streams not listed are
    accepted and counted, not stored."""
    out: dict[str, Mapper] = {}
    for spec in registry.specs():
        out.update(spec.mapping)
    out["usage"] = usage
    return out
