"""Salesforce REST: Account, Contact, Opportunity, Case, Task, User and any named sObject;
scores written back to Account custom fields, follow-ups as Tasks."""

from __future__ import annotations

from ..base import ConnectorSpec
from . import settings
from .canonical import ENTITY_MAPPING, MAPPING, ROLES
from .writer import writer

SPEC = ConnectorSpec(
    name="salesforce",
    label="Salesforce",
    settings=settings.SETTINGS,
    configured=settings.configured,
    needs=settings.NEEDS,
    credentials=settings.CREDENTIALS,
    connect=settings.connect,
    writer=writer,
    writer_settings=settings.WRITER_SETTINGS,
    mapping=MAPPING,
    roles=ROLES,
    entity_mapping=ENTITY_MAPPING,
    emulator="crm_connectors.salesforce.emulator:EMULATOR",
)
