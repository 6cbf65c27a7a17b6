"""The conformance kit (crm_connectors.testing) over every installed connector: one test body
per behaviour, each CRM against its own emulator."""

from __future__ import annotations

from crm_connectors import registry
from crm_connectors.testing import conformance_suite

for _name in registry.names():
    _suite = conformance_suite(_name)
    globals()[_suite.__name__] = _suite
