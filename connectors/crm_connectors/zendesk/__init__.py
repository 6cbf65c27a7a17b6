"""Zendesk Support: organizations, users, tickets with their metrics and satisfaction ratings,
through the incremental exports; scores written back to organization fields, follow-ups as task
tickets."""

from __future__ import annotations

from ..base import ConnectorSpec
from . import settings
from .canonical import MAPPING, ROLES
from .writer import writer

SPEC = ConnectorSpec(
    name="zendesk",
    label="Zendesk",
    settings=settings.SETTINGS,
    configured=settings.configured,
    needs=settings.NEEDS,
    credentials=settings.CREDENTIALS,
    connect=settings.connect,
    writer=writer,
    writer_settings=settings.WRITER_SETTINGS,
    mapping=MAPPING,
    roles=ROLES,
    emulator="crm_connectors.zendesk.emulator:EMULATOR",
)
