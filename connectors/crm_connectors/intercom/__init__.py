"""Intercom 2.14: contacts, companies, conversations, admins and tags; scores written back to
company data attributes, follow-ups as company tags."""

from __future__ import annotations

from ..base import ConnectorSpec
from . import settings
from .canonical import MAPPING, ROLES
from .writer import writer

SPEC = ConnectorSpec(
    name="intercom",
    label="Intercom",
    settings=settings.SETTINGS,
    configured=settings.configured,
    needs=settings.NEEDS,
    credentials=settings.CREDENTIALS,
    connect=settings.connect,
    writer=writer,
    mapping=MAPPING,
    roles=ROLES,
    emulator="crm_connectors.intercom.emulator:EMULATOR",
)
