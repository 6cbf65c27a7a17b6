"""Salesforce write-back: owned Account custom fields, and Tasks as follow-ups.

=========================  =============================================
logical key                Account field (type)
=========================  =============================================
score, trend, nps          ``Health_Score__c`` / ``Health_Trend__c`` / ``Health_NPS__c``:
                           Number(5,1) (-9999.9..9999.9; rounds extra decimals on save)
band, segment              ``Health_Band__c`` / ``Health_Segment__c``: Picklist (restricted)
factors                    ``Health_Top_Factors__c``: Text(255) (filterable, unlike a long
                           text area)
model_version              ``Health_Model_Version__c``: Text(64)
updated_at                 ``Health_Updated_At__c``: DateTime
=========================  =============================================

- **setup**: fields are created with the Tooling API (``CustomField``: ``FullName``
  ``Account.X__c`` and ``Metadata``); a repeat answers ``DUPLICATE_DEVELOPER_NAME``. Salesforce
  hides a new field from the API user until field-level security is granted [API.md §2.10]:
  with a permission set id (setting ``salesforce_permission_set_id``) the writer grants Read and
  Edit through ``FieldPermissions``, otherwise the report lists the fields to grant by hand.
  Creating fields needs the Customize Application permission.
- **read**: SOQL ``Id IN (...)`` of 200, selecting only the owned fields this user can see
  (SOQL fails on an unknown column). 15- and 18-character ids are matched by their first 15.
- **write**: ``PATCH /composite/sobjects`` of 200 with ``allOrNone: false``: one result per
  record (``ENTITY_IS_DELETED``, ...); ``UNABLE_TO_LOCK_ROW`` is worth another try later.
- **follow-ups**: a Task (``WhatId`` = the Account, ``OwnerId`` = the Account's owner,
  ``Subject``, ``Description``, ``Status`` "Not Started", ``Priority`` "High",
  ``ActivityDate`` = the due date); found again by SOQL ``Subject LIKE`` on the Account's Tasks;
  deleted into the recycle bin.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..base import WriteResult
from ..errors import FatalError, MissingScopes, NotFound
from ..fields import CrmField, Field, from_crm
from ..writing import (
    Change,
    Created,
    Writer,
    check_marker,
    chunks,
    due_date,
    error_code,
    listing,
    person_touched,
)
from .client import SalesforceClient
from .settings import client

#: sObject Collections take at most 200 records [API.md §2.5].
BATCH_MAX = 200
#: Per-record codes worth another try later: a row lock held by another transaction.
_RETRIABLE = frozenset({"UNABLE_TO_LOCK_ROW"})
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")

log = logging.getLogger(__name__)


def _soql_list(ids: Sequence[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)  # ids match _ID: nothing to escape


class SalesforceWriter(Writer):
    """Salesforce Account custom fields, created with the Tooling API."""

    crm = "salesforce"
    object = "Account"
    batch_max = BATCH_MAX
    followup_kind = "task"
    kinds: ClassVar[Mapping[str, str]] = {
        "number": "Number(5,1)",
        "enum": "Picklist (restricted)",
        "text": "Text",
        "datetime": "DateTime",
    }
    names: ClassVar[Mapping[str, str]] = {
        "score": "Health_Score__c",
        "band": "Health_Band__c",
        "trend": "Health_Trend__c",
        "factors": "Health_Top_Factors__c",
        "segment": "Health_Segment__c",
        "nps": "Health_NPS__c",
        "model_version": "Health_Model_Version__c",
        "updated_at": "Health_Updated_At__c",
    }
    where = (
        "Salesforce: create these Account fields (Setup > Object Manager > Account >"
        " Fields & Relationships)"
    )
    client: SalesforceClient

    def __init__(
        self,
        client: SalesforceClient,
        fields: Sequence[Field],
        *,
        permission_set_id: str | None = None,
    ) -> None:
        super().__init__(client, fields)
        self.permission_set_id = permission_set_id or None
        self._visible: dict[str, dict[str, Any]] | None = None  # describe, by lower-case name

    def field_name(self, key: str) -> str:
        return "Health_" + "_".join(p.capitalize() for p in key.split("_")) + "__c"

    def crm_type(self, f: Field) -> str:
        return f"Text({f.max_length})" if f.kind == "text" else self.kinds[f.kind]

    def definition(self, cf: CrmField) -> dict[str, Any]:
        """The Tooling API ``CustomField`` body [API.md §2.10]."""
        f = cf.field
        meta: dict[str, Any] = {"label": f.label, "description": f.description}
        if f.kind == "number":
            meta |= {"type": "Number", "precision": 5, "scale": f.decimals}
        elif f.kind == "enum":
            meta |= {
                "type": "Picklist",
                "valueSet": {
                    "restricted": True,
                    "valueSetDefinition": {
                        "sorted": False,
                        "value": [{"fullName": o, "label": o, "default": False} for o in f.options],
                    },
                },
            }
        elif f.kind == "text":
            meta |= {"type": "Text", "length": f.max_length}
        else:
            meta |= {"type": "DateTime"}
        return {"FullName": f"{self.object}.{cf.name}", "Metadata": meta}

    # -- ensure_fields hooks --------------------------------------------------------------------

    def _describe(self) -> dict[str, dict[str, Any]]:
        body = self.client.describe(self.object)
        self._visible = {str(f.get("name")).lower(): f for f in body.get("fields") or []}
        return self._visible

    def _writable(self, cf: CrmField) -> bool:
        f = (self._visible or {}).get(cf.name.lower())
        return f is not None and bool(f.get("updateable"))

    def list_fields(self) -> Mapping[str, Any]:
        return self._describe()

    def present(self, cf: CrmField, have: Mapping[str, Any]) -> bool:
        return cf.name.lower() in have

    def create_field(self, cf: CrmField, have: Mapping[str, Any]) -> Created:
        self._visible = None  # described again before anything reads it
        try:
            self.client.create_custom_field(self.definition(cf))
        except FatalError as err:
            if err.status != 400 or err.code != "DUPLICATE_DEVELOPER_NAME":
                raise
            return "exists"  # there, but hidden from this user (no field-level security)
        return "created"

    def unwritable(self, present: Sequence[CrmField], *, grant: bool) -> list[CrmField]:
        if self._visible is None:
            self._describe()
        hidden = [cf for cf in present if not self._writable(cf)]
        if hidden and grant and self.permission_set_id:
            try:
                self._grant(hidden)
            except MissingScopes:
                return hidden
            self._describe()
            hidden = [cf for cf in hidden if not self._writable(cf)]
        return hidden

    def _grant(self, fields: Sequence[CrmField]) -> None:
        assert self.permission_set_id is not None
        for cf in fields:
            try:
                self.client.grant_field(self.permission_set_id, self.object, cf.name)
            except FatalError as err:
                if err.status != 400:
                    raise
                log.warning(
                    "salesforce: field permission on %s not granted (%s)", cf.name, error_code(err)
                )

    def denied_reason(self, err: MissingScopes) -> str:
        return "the API user may not create fields (it needs Customize Application)"

    def unwritable_note(self, fields: Sequence[CrmField]) -> str:
        how = (
            "or set salesforce_permission_set_id to let target-health grant it"
            if not self.permission_set_id
            else "the grant through FieldPermissions was refused or did not take"
        )
        return (
            "Salesforce: grant the integration user Read and Edit field-level security on"
            f" these Account fields ({how}):{listing(fields)}"
        )

    # -- read and write -------------------------------------------------------------------------

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if self._visible is None:
            self._describe()
        # Select only the owned fields this user can see: SOQL fails on an unknown column.
        columns = [cf for cf in self.fields if cf.name.lower() in (self._visible or {})]
        valid = [i for i in dict.fromkeys(str(i) for i in ids) if _ID.match(i)]
        by_prefix = {i[:15]: i for i in valid}  # an 18-character id starts with the 15 one
        select = ", ".join(["Id", *(cf.name for cf in columns)])
        out: dict[str, dict[str, Any]] = {}
        for chunk in chunks(valid, BATCH_MAX):
            page = self.client.query(
                f"SELECT {select} FROM {self.object} WHERE Id IN ({_soql_list(chunk)})"
            )
            while True:
                for record in page.records:
                    rid = by_prefix.get(str(record.get("Id"))[:15])
                    if rid is None:
                        continue
                    out[rid] = {
                        cf.key: from_crm(cf, record.get(cf.name)) if cf in columns else None
                        for cf in self.fields
                    }
                if page.next_url is None:
                    break
                page = self.client.query_more(page.next_url)
        return out

    def send_batch(self, batch: Sequence[Change]) -> list[WriteResult]:
        body = self.client.update_records(
            [
                {
                    "attributes": {"type": self.object},
                    "id": change.id,
                    **{cf.name: v for cf, v in change.values.items()},
                }
                for change in batch
            ]
        )
        # HTTP 200 with one result per record, in request order [API.md §2.5].
        if not isinstance(body, list) or len(body) != len(batch):
            return [
                WriteResult(c.id, False, "NO_RESULT", True, "Salesforce did not report it")
                for c in batch
            ]
        results = []
        for change, row in zip(batch, body, strict=True):
            if isinstance(row, dict) and row.get("success"):
                results.append(WriteResult(change.id, True))
                continue
            errors = (row.get("errors") if isinstance(row, dict) else None) or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str(first.get("statusCode") or "ERROR")
            named = ", ".join(str(f) for f in first.get("fields") or [])
            detail = (
                f"Salesforce refused it (fields: {named})" if named else "Salesforce refused it"
            )
            results.append(WriteResult(change.id, False, code, code in _RETRIABLE, detail))
        return results

    # -- follow-ups (Tasks) ---------------------------------------------------------------------

    def create_followup(
        self,
        record_id: str,
        subject: str,
        body: str,
        *,
        marker: str,
        due: dt.date | None = None,
    ) -> str:
        if not _ID.match(record_id):
            raise NotFound("not an Account id", vendor=self.crm, route="POST /sobjects/Task")
        page = self.client.query(f"SELECT Id, OwnerId FROM {self.object} WHERE Id = '{record_id}'")
        if not page.records:
            raise NotFound(
                "the Account is gone", vendor=self.crm, route="POST /sobjects/Task", status=404
            )
        task: dict[str, Any] = {
            "WhatId": record_id,
            "Subject": subject[:255],
            "Description": body,
            "Status": "Not Started",
            "Priority": "High",
            "ActivityDate": due_date(due).isoformat(),
        }
        owner = page.records[0].get("OwnerId")
        if owner:
            task["OwnerId"] = owner
        return self.client.create("Task", task)

    def find_followup(self, record_id: str, marker: str) -> str | None:
        check_marker(marker)  # letters, digits and '-': nothing to escape, no LIKE wildcard
        if not _ID.match(record_id):
            return None
        page = self.client.query(
            f"SELECT Id FROM Task WHERE WhatId = '{record_id}' AND Subject LIKE '%{marker}%'"
        )
        return str(page.records[0]["Id"]) if page.records else None

    def followup_kept(self, object_id: str) -> str | None:
        """ "completed" or "edited" when a person worked on the Task since we made it
        (``IsClosed``; ``LastModifiedDate`` moves on user edits, not on system updates)."""
        if not _ID.match(object_id):
            return None
        page = self.client.query(
            f"SELECT IsClosed, CreatedDate, LastModifiedDate FROM Task WHERE Id = '{object_id}'"
        )
        if not page.records:
            return None
        task = page.records[0]
        return person_touched(
            bool(task.get("IsClosed")), task.get("CreatedDate"), task.get("LastModifiedDate")
        )

    def delete_followup(self, object_id: str) -> bool:
        if not _ID.match(object_id):
            return False
        try:
            self.client.delete("Task", object_id)
        except NotFound:  # NOT_FOUND, or ENTITY_IS_DELETED: in the recycle bin already
            return False
        return True


def writer(
    config: Mapping[str, Any], fields: Sequence[Field], **client_kw: Any
) -> SalesforceWriter:
    return SalesforceWriter(
        client(config, **client_kw),
        fields,
        permission_set_id=config.get("salesforce_permission_set_id"),
    )
