"""HubSpot CRM v3: companies, contacts, deals, tickets and NPS feedback, owners and
associations; scores written back to company properties, follow-ups as tasks."""

from __future__ import annotations

from ..base import ConnectorSpec
from . import settings
from .canonical import MAPPING, ROLES
from .writer import writer

SPEC = ConnectorSpec(
    name="hubspot",
    label="HubSpot",
    settings=settings.SETTINGS,
    configured=settings.configured,
    needs=settings.NEEDS,
    credentials=settings.CREDENTIALS,
    connect=settings.connect,
    writer=writer,
    mapping=MAPPING,
    roles=ROLES,
    emulator="crm_connectors.hubspot.emulator:EMULATOR",
)
