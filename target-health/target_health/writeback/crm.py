"""The CRMs write-back talks to: one writer per configured CRM, from its connector folder
(``crm_connectors.<crm>.writer``, through the registry), for target-health's owned fields.

A writer is an :class:`~crm_connectors.base.AccountWriter` (owned fields created, read and
written on the CRM's account records; crm_connectors.writing says how) and, for retention
programs, :class:`~crm_connectors.base.Followups`. The credentials are the connectors'
settings, the same as tap-crm's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_connectors import registry
from crm_connectors.base import AccountWriter

from .fields import FIELDS

CrmWriter = AccountWriter


def writers(config: Mapping[str, Any], **client_kw: Any) -> list[AccountWriter]:
    """One writer per configured CRM that can write (a read-only connector is left out)."""
    out: list[AccountWriter] = []
    try:
        for spec in registry.configured(config):
            if spec.writer is not None:
                out.append(spec.writer(config, FIELDS, **client_kw))
    except BaseException:
        for writer in out:
            writer.close()
        raise
    return out
