"""HubSpot write-back: owned company properties in their own group, and tasks as follow-ups.

=========================  =============================================
logical key                company property (type / fieldType)
=========================  =============================================
score, trend, nps          ``chs_health_score`` / ``chs_health_trend`` / ``chs_nps``: number
band, segment              ``chs_health_band`` / ``chs_segment``: enumeration / select
factors, model_version     ``chs_top_factors`` / ``chs_model_version``: string / text
updated_at                 ``chs_updated_at``: datetime / date
=========================  =============================================

Properties carry a ``chs_`` prefix and live in the group ``customer_health`` ("Customer
health"), created first. HubSpot stores values as text; "" clears one [API.md §1.7].

- **read**: ``batch/read`` of 100 [API.md §1.5]; ids not found are left out, and a merged-away
  id answered by its surviving record is not taken for it.
- **write**: ``batch/update`` of 100 with ``objectWriteTraceId`` per input, which results and
  errors echo, so they tie back to inputs even when HubSpot answers for a merged-away id with
  its survivor's id [API.md §1.5]. HubSpot rejects a whole batch (400 ``VALIDATION_ERROR``) for
  one invalid value [API.md, Property values]: the batch is split until the bad record stands alone.
- **setup**: a create that exists answers 409; a 409 for a property that is *archived* under
  that name means the name is taken until someone restores it (Settings > Properties >
  Archived). 403 ``MISSING_SCOPES`` lists the scope to grant.
- **follow-ups**: a task (``hs_task_subject``, ``hs_task_body``, ``hs_timestamp`` = the due
  date, status ``NOT_STARTED``, priority ``HIGH``, type ``TODO``, the company's owner)
  associated to the company (type 192) in the same create. Found again through the company's
  associated tasks, never the search index (it lags). Deleted by archiving; HubSpot answers 204
  to archiving a task that is gone, so it is looked up first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..base import WriteResult
from ..errors import MissingScopes, NotFound, WriteError
from ..fields import CrmField, Field, from_crm
from ..writing import Change, Created, Writer, check_marker, chunks, due_date, person_touched
from .client import BATCH_MAX, HubSpotClient
from .settings import client

GROUP = "customer_health"
GROUP_LABEL = "Customer health"
#: HubSpot's default association type of a task to a company [API.md, Associations].
TASK_TO_COMPANY = 192
_FIELD_TYPE = {"number": "number", "enum": "select", "text": "text", "datetime": "date"}


def _text(value: Any) -> str:
    """A property value as HubSpot stores it: text, "" for none."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


class HubSpotWriter(Writer):
    """HubSpot company properties in the ``customer_health`` group."""

    crm = "hubspot"
    object = "companies"
    batch_max = BATCH_MAX
    followup_kind = "task"
    kinds: ClassVar[Mapping[str, str]] = {
        "number": "number",
        "enum": "enumeration",
        "text": "string",
        "datetime": "datetime",
    }
    names: ClassVar[Mapping[str, str]] = {
        "score": "chs_health_score",
        "band": "chs_health_band",
        "trend": "chs_health_trend",
        "factors": "chs_top_factors",
        "segment": "chs_segment",
        "nps": "chs_nps",
        "model_version": "chs_model_version",
        "updated_at": "chs_updated_at",
    }
    where = f"HubSpot: create these company properties in the group {GROUP!r} ({GROUP_LABEL})"
    client: HubSpotClient

    def __init__(self, client: HubSpotClient, fields: Sequence[Field]) -> None:
        super().__init__(client, fields)

    def field_name(self, key: str) -> str:
        return f"chs_{key}"

    def definition(self, cf: CrmField) -> dict[str, Any]:
        """The PropertyCreate body: name, label, type, fieldType, groupName [API.md §1.7]."""
        body: dict[str, Any] = {
            "name": cf.name,
            "label": cf.label,
            "type": cf.type,
            "fieldType": _FIELD_TYPE[cf.field.kind],
            "groupName": GROUP,
            "description": cf.field.description,
            "formField": False,
        }
        if cf.field.options:
            body["options"] = [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(cf.field.options)
            ]
        return body

    # -- ensure_fields hooks --------------------------------------------------------------------

    def list_fields(self) -> Mapping[str, Any]:
        return {str(p.get("name")): p for p in self.client.properties(self.object)}

    def prepare_create(self, have: Mapping[str, Any]) -> None:
        names = {str(g.get("name")) for g in self.client.property_groups(self.object)}
        if GROUP in names:
            return
        try:
            self.client.create_property_group(
                self.object, {"name": GROUP, "label": GROUP_LABEL, "displayOrder": -1}
            )
        except WriteError as err:
            if err.status != 409:  # 409: made meanwhile
                raise

    def create_field(self, cf: CrmField, have: Mapping[str, Any]) -> Created:
        try:
            self.client.create_property(self.object, self.definition(cf))
        except WriteError as err:
            if err.status != 409:
                raise
            # Made meanwhile, or archived under this name (an archived name is taken).
            return "blocked" if self.client.property_archived(self.object, cf.name) else "exists"
        return "created"

    def drift(self, have: Mapping[str, Any]) -> list[str]:
        notes = []
        for cf in self.fields:
            prop = have.get(cf.name)
            if prop is None:
                continue
            if prop.get("type") != cf.type:
                notes.append(f"{cf.name} has type {prop.get('type')} in HubSpot, not {cf.type}")
            options = {str(o.get("value")) for o in prop.get("options") or []}
            lost = [o for o in cf.field.options if o not in options]
            if cf.field.options and lost:
                notes.append(
                    f"{cf.name} lacks the options {', '.join(lost)}: such writes will fail"
                )
        return notes

    def denied_reason(self, err: MissingScopes) -> str:
        scopes = ", ".join(err.scopes) or "to write company properties"
        return f"the app lacks the scope {scopes} (grant it, or create them by hand)"

    def blocked_note(self, names: Sequence[str]) -> str:
        return (
            "archived in HubSpot (restore them under Settings > Properties > Archived):"
            f" {', '.join(names)}"
        )

    # -- read and write -------------------------------------------------------------------------

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        names = [cf.name for cf in self.fields]
        out: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(str(i) for i in ids)), BATCH_MAX):
            wanted = set(chunk)
            for record in self.client.batch_read(self.object, chunk, names):
                rid = str(record.get("id"))
                if rid not in wanted:
                    continue  # a merged-away id answered by its surviving record
                props = record.get("properties") or {}
                out[rid] = {cf.key: from_crm(cf, props.get(cf.name)) for cf in self.fields}
        return out

    def send_batch(self, batch: Sequence[Change]) -> list[WriteResult]:
        return self.send_split(batch, self._update, "HubSpot refused a value of this record")

    def _update(self, batch: Sequence[Change]) -> list[WriteResult]:
        body = self.client.batch_update(
            self.object,
            [
                {
                    "id": change.id,
                    "objectWriteTraceId": str(n),
                    "properties": {cf.name: _text(v) for cf, v in change.values.items()},
                }
                for n, change in enumerate(batch)
            ],
        )
        done_traces = {str(r.get("objectWriteTraceId")) for r in body.get("results") or []}
        done_ids = {str(r.get("id")) for r in body.get("results") or []}
        failed: dict[str, str] = {}
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            code = str(error.get("category") or error.get("subCategory") or "ERROR")
            for trace in context.get("objectWriteTraceId") or []:
                failed[f"trace:{trace}"] = code
            for rid in context.get("ids") or []:
                failed[f"id:{rid}"] = code
        results = []
        for n, change in enumerate(batch):
            refused = failed.get(f"trace:{n}") or failed.get(f"id:{change.id}")
            if refused:
                results.append(WriteResult(change.id, False, refused, False, "HubSpot refused it"))
            elif str(n) in done_traces or change.id in done_ids:
                results.append(WriteResult(change.id, True))
            else:
                results.append(
                    WriteResult(change.id, False, "NO_RESULT", True, "HubSpot did not report it")
                )
        return results

    # -- follow-ups (tasks) ---------------------------------------------------------------------

    def create_followup(
        self,
        record_id: str,
        subject: str,
        body: str,
        *,
        marker: str,
        due: dt.date | None = None,
    ) -> str:
        company = self.client.get_object(self.object, record_id, ["hubspot_owner_id"])
        owner = (company.get("properties") or {}).get("hubspot_owner_id")
        props = {
            "hs_timestamp": f"{due_date(due).isoformat()}T00:00:00Z",
            "hs_task_subject": subject,
            "hs_task_body": body,
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
            "hs_task_type": "TODO",
        }
        if owner:
            props["hubspot_owner_id"] = str(owner)
        created = self.client.create_object(
            "tasks",
            {
                "properties": props,
                "associations": [
                    {
                        "to": {"id": record_id},
                        "types": [
                            {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": TASK_TO_COMPANY,
                            }
                        ],
                    }
                ],
            },
        )
        return str(created["id"])

    def find_followup(self, record_id: str, marker: str) -> str | None:
        check_marker(marker)
        try:
            ids = self.client.associated_ids(self.object, record_id, "tasks")
        except NotFound:
            return None
        for chunk in chunks(ids, BATCH_MAX):
            for task in self.client.batch_read("tasks", chunk, ["hs_task_subject"]):
                if marker in str((task.get("properties") or {}).get("hs_task_subject") or ""):
                    return str(task.get("id"))
        return None

    def followup_kept(self, object_id: str) -> str | None:
        """ "completed" or "edited" when a person worked on the task since we made it."""
        try:
            task = self.client.get_object(
                "tasks", object_id, ["hs_task_status", "hs_createdate", "hs_lastmodifieddate"]
            )
        except NotFound:
            return None
        props = task.get("properties") or {}
        return person_touched(
            props.get("hs_task_status") == "COMPLETED",
            props.get("hs_createdate") or task.get("createdAt"),
            props.get("hs_lastmodifieddate") or task.get("updatedAt"),
        )

    def delete_followup(self, object_id: str) -> bool:
        try:  # HubSpot answers 204 to archiving a task that is gone: ask first
            self.client.get_object("tasks", object_id)
        except NotFound:
            return False
        self.client.archive_object("tasks", object_id)
        return True


def writer(config: Mapping[str, Any], fields: Sequence[Field], **client_kw: Any) -> HubSpotWriter:
    return HubSpotWriter(client(config, **client_kw), fields)
