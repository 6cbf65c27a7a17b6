"""Zendesk write-back: owned organization fields, and task tickets as follow-ups.

=========================  =============================================
logical key                organization field (type)
=========================  =============================================
score, trend, nps          ``health_score`` / ``health_trend`` / ``health_nps``: decimal
band, segment              ``health_band`` / ``health_segment``: dropdown (options' tags are
                           the values, their names the labels)
factors, model_version     ``health_top_factors`` / ``health_model_version``: text
updated_at                 ``health_updated_at``: text holding the canonical
                           ``YYYY-MM-DDTHH:MM:SSZ`` (Zendesk's ``date`` fields hold a day only,
                           which would lose the time and differ from what was sent)
=========================  =============================================

- **setup**: ``POST /organization_fields`` (admin); a key already taken answers 422
  ``RecordInvalid`` and counts as existing once the list shows it [API.md §6]. An agent's token
  gets 403: the report lists the fields to create by hand (Admin Center > People > Configuration
  > Organization fields).
- **read**: ``GET /organizations/show_many`` of 100 [API.md §7.2].
- **write**: one ``PUT /organizations/update_many`` of up to 100 organizations, each with its own
  values, then its job is polled (``GET /job_statuses/{id}``, waits doubling from 1 s, at most
  ``job_wait`` seconds) until ``completed``: each organization's result comes from the job's
  ``results`` (a failed item has ``error`` and ``details`` instead of ``success``)
  [API.md §7.2, §7.3]. One job at a time, so the 30-job limit is never reached; a job still
  running after ``job_wait`` fails its records as retriable (the values are absolute: the next
  run writes them again, or finds them written). Single updates are not used: they are limited
  to 5 a minute per organization [API.md §2.3].
- **follow-ups**: a ticket of type ``task`` on the organization (``due_at``, priority high,
  tagged ``target-health``), created with an ``Idempotency-Key`` so a retried create makes no
  second ticket [API.md §8.2]; its ``external_id`` carries the marker, so it is found again by
  ``GET /tickets?external_id=`` [API.md §7.4]. Zendesk organizations have no owner: the task's
  requester is the API user and it is unassigned, in the organization's view. Deleted with a
  soft delete.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..base import WriteResult
from ..errors import FatalError, MissingScopes
from ..fields import CrmField, Field, from_crm
from ..writing import Change, Created, Writer, check_marker, chunks, due_date
from .client import BATCH_MAX, ZendeskClient
from .settings import client

log = logging.getLogger(__name__)

TAG = "target-health"
_DONE = frozenset({"completed", "failed", "killed"})


def _external_id(record_id: str, marker: str) -> str:
    return f"{marker}-org-{record_id}"


class ZendeskWriter(Writer):
    """Zendesk organization fields; batched asynchronous updates."""

    crm = "zendesk"
    object = "organizations"
    batch_max = BATCH_MAX
    followup_kind = "task"
    kinds: ClassVar[Mapping[str, str]] = {
        "number": "decimal",
        "enum": "dropdown",
        "text": "text",
        "datetime": "text",
    }
    where = (
        "Zendesk: create these organization fields (Admin Center > People > Configuration >"
        " Organization fields)"
    )
    client: ZendeskClient

    def __init__(
        self, client: ZendeskClient, fields: Sequence[Field], *, job_wait: float = 300.0
    ) -> None:
        super().__init__(client, fields)
        self.job_wait = job_wait

    def field_name(self, key: str) -> str:
        return "health_top_factors" if key == "factors" else f"health_{key}"

    def definition(self, cf: CrmField) -> dict[str, Any]:
        """The ``organization_field`` body [API.md §6.1]."""
        body: dict[str, Any] = {
            "type": cf.type,
            "key": cf.name,
            "title": cf.label,
            "description": cf.field.description,
        }
        if cf.field.options:
            body["custom_field_options"] = [
                {"name": o.replace("_", " ").capitalize(), "value": o} for o in cf.field.options
            ]
        return body

    # -- ensure_fields hooks --------------------------------------------------------------------

    def list_fields(self) -> Mapping[str, Any]:
        return {str(f.get("key")): f for f in self.client.organization_fields()}

    def present(self, cf: CrmField, have: Mapping[str, Any]) -> bool:
        return cf.name in have and have[cf.name].get("active", True) is not False

    def create_field(self, cf: CrmField, have: Mapping[str, Any]) -> Created:
        try:
            self.client.create_organization_field(self.definition(cf))
        except FatalError as err:
            if err.status != 422 or cf.name not in self.list_fields():
                raise
            return "exists"  # made meanwhile (or inactive: reported as existing)
        return "created"

    def drift(self, have: Mapping[str, Any]) -> list[str]:
        return [
            f"{cf.name} has type {have[cf.name].get('type')} in Zendesk, not {cf.type}"
            for cf in self.fields
            if cf.name in have and have[cf.name].get("type") != cf.type
        ]

    def denied_reason(self, err: MissingScopes) -> str:
        return "only an administrator may create organization fields"

    # -- read and write -------------------------------------------------------------------------

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in chunks([i for i in dict.fromkeys(map(str, ids)) if i.isdigit()], BATCH_MAX):
            for org in self.client.show_organizations(chunk):
                values = org.get("organization_fields") or {}
                out[str(org.get("id"))] = {
                    cf.key: from_crm(cf, values.get(cf.name)) for cf in self.fields
                }
        return out

    def send_batch(self, batch: Sequence[Change]) -> list[WriteResult]:
        bad = [c for c in batch if not c.id.isdigit()]
        good = [c for c in batch if c.id.isdigit()]
        results = {
            c.id: WriteResult(c.id, False, "RecordNotFound", False, "not an id") for c in bad
        }
        if good:
            job = self.client.update_organizations(
                [
                    {
                        "id": int(c.id),
                        "organization_fields": {cf.name: v for cf, v in c.values.items()},
                    }
                    for c in good
                ]
            )
            results |= self._job_results(job, good)
        return [results[c.id] for c in batch]

    def _job_results(self, job: dict[str, Any], batch: Sequence[Change]) -> dict[str, WriteResult]:
        waited, delay = 0.0, 1.0
        while str(job.get("status")) not in _DONE and waited < self.job_wait:
            self.client.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)
            job = self.client.job_status(str(job.get("id")))
        status = str(job.get("status"))
        if status not in _DONE:
            log.warning("zendesk: update job still %s after %.0f s; left for a later run",
                        status, waited)  # fmt: skip
            return {
                c.id: WriteResult(c.id, False, "JOB_PENDING", True, "Zendesk had not finished")
                for c in batch
            }
        by_id: dict[str, dict[str, Any]] = {}
        for item in job.get("results") or []:
            if isinstance(item, dict):
                by_id[str(item.get("id"))] = item
        out = {}
        for c in batch:
            item = by_id.get(c.id)
            if item is None:
                out[c.id] = WriteResult(
                    c.id, False, "NO_RESULT", True, f"Zendesk's job reported nothing ({status})"
                )
            elif item.get("success") is True or str(item.get("status")) == "Updated":
                out[c.id] = WriteResult(c.id, True)
            else:
                code = str(item.get("error") or "ERROR")
                out[c.id] = WriteResult(c.id, False, code, False, "Zendesk refused it")
        return out

    # -- follow-ups (task tickets) --------------------------------------------------------------

    def create_followup(
        self,
        record_id: str,
        subject: str,
        body: str,
        *,
        marker: str,
        due: dt.date | None = None,
    ) -> str:
        external = _external_id(record_id, check_marker(marker))
        ticket = self.client.create_ticket(
            {
                "subject": subject,
                "comment": {"body": body or subject, "public": False},
                "type": "task",
                "priority": "high",
                "due_at": f"{due_date(due).isoformat()}T00:00:00Z",
                "organization_id": int(record_id) if record_id.isdigit() else record_id,
                "tags": [TAG],
                "external_id": external,
            },
            idempotency_key=external,
        )
        return str(ticket["id"])

    def find_followup(self, record_id: str, marker: str) -> str | None:
        check_marker(marker)
        for ticket in self.client.tickets_by_external_id(_external_id(record_id, marker)):
            if ticket.get("status") != "deleted":
                return str(ticket.get("id"))
        return None

    def delete_followup(self, object_id: str) -> bool:
        return self.client.delete_ticket(object_id)


def writer(config: Mapping[str, Any], fields: Sequence[Field], **client_kw: Any) -> ZendeskWriter:
    wait = config.get("zendesk_job_wait_seconds")
    return ZendeskWriter(
        client(config, **client_kw), fields, job_wait=float(300 if wait in (None, "") else wait)
    )
