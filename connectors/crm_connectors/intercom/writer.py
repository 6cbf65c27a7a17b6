"""Intercom write-back: owned company data attributes, and company tags as follow-ups.

=========================  =============================================
logical key                company data attribute (data_type)
=========================  =============================================
score, trend, nps          ``health_score`` / ``health_trend`` / ``health_nps``: float
band, segment              ``health_band`` / ``health_segment``: options (a list attribute)
factors, model_version     ``health_top_factors`` / ``health_model_version``: string
updated_at                 ``health_updated_at``: date (Intercom's timestamp type: unix
                           seconds; built-in ``created_at`` is reported as ``date`` too)
=========================  =============================================

- **setup**: ``POST /data_attributes`` (``name``, ``model: company``, ``data_type``, options
  for a list) [API.md §3.6]; an owned attribute someone archived is restored (``PUT`` with
  ``archived: false``); a repeated create answers 400 "You already have ...". 403 ``forbidden``:
  the token may not write data attributes.
- **read**: one ``GET /companies/{id}`` per company (Intercom's ``id``, not ``company_id``).
- **write**: one ``PUT /companies/{id}`` per company: Intercom has no batch writes
  [API.md §3.3]; a 404/400 of that call fails that record.
- **follow-ups**: a **tag** on the company named by the program's tag template (``POST /tags``
  with ``companies``); a tag has no text, so the body and due date are not kept. Not a note:
  Intercom notes live on contacts only and the API cannot delete them, so a note could not be
  rolled back; a tag can be removed (``untag``). Intercom companies have no owner either: the
  tag is what the owner's company views and filters show. The id is ``"<company id>/<tag
  id>"``. Tagging is find-or-create by name, then set: idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..base import WriteResult
from ..errors import CrmError, FatalError, MissingScopes
from ..fields import CrmField, Field, epoch_seconds, from_crm
from ..writing import Change, Created, Writer, check_marker, error_code, is_record_error
from .client import IntercomClient
from .settings import client


class IntercomWriter(Writer):
    """Intercom company data attributes; one company per call."""

    crm = "intercom"
    object = "companies"
    batch_max = 1
    followup_kind = "tag"
    kinds: ClassVar[Mapping[str, str]] = {
        "number": "float",
        "enum": "options",
        "text": "string",
        "datetime": "date",
    }
    names: ClassVar[Mapping[str, str]] = {
        "score": "health_score",
        "band": "health_band",
        "trend": "health_trend",
        "factors": "health_top_factors",
        "segment": "health_segment",
        "nps": "health_nps",
        "model_version": "health_model_version",
        "updated_at": "health_updated_at",
    }
    where = "Intercom: create these company data attributes (Settings > Data > Companies)"
    client: IntercomClient

    def __init__(self, client: IntercomClient, fields: Sequence[Field]) -> None:
        super().__init__(client, fields)

    def field_name(self, key: str) -> str:
        return f"health_{key}"

    def definition(self, cf: CrmField) -> dict[str, Any]:
        """The ``POST /data_attributes`` body [API.md §3.6]."""
        body: dict[str, Any] = {
            "name": cf.name,
            "model": "company",
            "data_type": cf.type,
            "description": cf.field.description,
            "messenger_writable": False,
        }
        if cf.field.options:
            body["options"] = [{"value": o} for o in cf.field.options]
        return body

    # -- ensure_fields hooks --------------------------------------------------------------------

    def list_fields(self) -> Mapping[str, Any]:
        return {
            str(a.get("name")): a
            for a in self.client.all_data_attributes("company")
            if a.get("custom")
        }

    def present(self, cf: CrmField, have: Mapping[str, Any]) -> bool:
        return cf.name in have and not have[cf.name].get("archived")

    def create_field(self, cf: CrmField, have: Mapping[str, Any]) -> Created:
        old = have.get(cf.name)
        try:
            if old is not None:  # ours, archived by someone: restore it
                self.client.update_data_attribute(str(old.get("id")), {"archived": False})
            else:
                self.client.create_data_attribute(self.definition(cf))
        except FatalError as err:
            if err.status != 400 or err.code != "parameter_invalid":
                raise
            if cf.name not in self.list_fields():
                raise
            return "exists"  # made meanwhile
        return "created"

    def denied_reason(self, err: MissingScopes) -> str:
        return "the access token may not write data attributes"

    # -- read and write -------------------------------------------------------------------------

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rid in dict.fromkeys(str(i) for i in ids):
            company = self.client.company(rid)
            if company is None:
                continue
            custom = company.get("custom_attributes") or {}
            out[rid] = {cf.key: from_crm(cf, custom.get(cf.name)) for cf in self.fields}
        return out

    def send_batch(self, batch: Sequence[Change]) -> list[WriteResult]:
        (change,) = batch
        attributes = {
            cf.name: epoch_seconds(v) if v is not None and cf.field.kind == "datetime" else v
            for cf, v in change.values.items()
        }
        try:
            self.client.update_company(change.id, {"custom_attributes": attributes})
        except CrmError as err:
            if not is_record_error(err):
                raise
            return [WriteResult(change.id, False, error_code(err), False, "Intercom refused it")]
        return [WriteResult(change.id, True)]

    # -- follow-ups (company tags) --------------------------------------------------------------

    def _company_tags(self, record_id: str) -> list[dict[str, Any]]:
        company = self.client.company(record_id) or {}
        return list((company.get("tags") or {}).get("tags") or [])

    def create_followup(
        self,
        record_id: str,
        subject: str,
        body: str,
        *,
        marker: str,
        due: dt.date | None = None,
    ) -> str:
        tag = self.client.tag_companies(subject, [{"id": record_id}])
        return f"{record_id}/{tag['id']}"

    def find_followup(self, record_id: str, marker: str) -> str | None:
        check_marker(marker)
        for tag in self._company_tags(record_id):
            if marker in str(tag.get("name") or ""):
                return f"{record_id}/{tag.get('id')}"
        return None

    def delete_followup(self, object_id: str) -> bool:
        record_id, _, tag_id = object_id.partition("/")
        tag = next((t for t in self._company_tags(record_id) if str(t.get("id")) == tag_id), None)
        if tag is None:
            return False  # untagged already, or the company is gone
        self.client.tag_companies(str(tag.get("name")), [{"id": record_id, "untag": True}])
        return True


def writer(config: Mapping[str, Any], fields: Sequence[Field], **client_kw: Any) -> IntercomWriter:
    return IntercomWriter(client(config, **client_kw), fields)
