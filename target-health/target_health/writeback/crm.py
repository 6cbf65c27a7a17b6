"""The write adapters: one per CRM, each creating, reading and writing the fields target-health
owns (fields.py) on that CRM's account records, and nothing else.

```
class CrmWriter(Protocol):
    crm: str                 # "hubspot" | "salesforce" | "intercom"
    object: str              # "companies" | "Account" | "companies"
    batch_max: int           # 100 | 200 | 1: records per write call
    fields: tuple[CrmField, ...]
    def ensure_fields(self, *, create: bool = True) -> SetupReport
    def read(self, ids) -> {record id: {key: canonical value}}
    def write(self, [(record id, {key: value})]) -> [WriteResult], in input order
    def create_followup(self, record id, subject, body, *, due=None) -> object id
    def find_followup(self, record id, marker) -> object id | None
    def delete_followup(self, object id) -> bool
    def close(self) -> None
```

Record ids are the CRM's own: HubSpot company id, Salesforce Account Id, Intercom company ``id``
(not ``company_id``). Field keys are the logical ones of fields.py (``score``, ``band``, ...).

**ensure_fields** lists the CRM's fields once and creates only the owned ones that are missing
(HubSpot: the ``customer_health`` property group first); it never changes any other field. When
the credentials may not create them (HubSpot 403 ``MISSING_SCOPES``, Salesforce 403
``INSUFFICIENT_ACCESS``, Intercom 403 ``forbidden``), the report's ``missing`` and ``message``
name each field to create by hand, with its type. ``create=False`` only reports. Creates are
safe to retry: a create that already happened answers "exists" (HubSpot 409, Salesforce
``DUPLICATE_DEVELOPER_NAME``, Intercom "You already have ..."), which counts as existing.
Salesforce hides a new field from the API user until field-level security is granted
[CRM-API.md §2.10]: with a permission set id (setting ``salesforce_permission_set_id``) the
adapter grants Read and Edit through ``FieldPermissions``, otherwise the report lists the fields
to grant by hand. ``existing`` means present in the CRM; ``missing`` means not writable yet.

**read** returns canonical values (fields.normalize) for the records found, in the API's largest
batches: HubSpot ``batch/read`` of 100, Salesforce SOQL ``Id IN (...)`` of 200, Intercom one
``GET /companies/{id}`` each. Records not found (deleted, merged away, an id of another kind) are
left out of the answer.

**write** takes ``(id, {key: value})`` pairs, puts each value in canonical form and sends them
in batches of ``batch_max``: HubSpot ``batch/update``, Salesforce ``PATCH /composite/sobjects``
with ``allOrNone: false``, Intercom ``PUT /companies/{id}``. Every request sets absolute values,
so each is sent as idempotent and the HTTP layer retries throttles, 5xx and dropped connections.
Results come back per record, in input order:

- a value that cannot be written (fields.InvalidValue) fails that record with ``INVALID_VALUE``
  before any call, and is not sent;
- per-record errors of the API fail that record with the vendor's code: HubSpot 207 ``errors``
  (``OBJECT_NOT_FOUND``), Salesforce collection results (``ENTITY_IS_DELETED``, ...), Intercom
  404/400 of that record's call. HubSpot rejects a whole batch (400 ``VALIDATION_ERROR``) for one
  invalid value [BEHAVIOR.md, Objects]; the batch is then split in halves until the rejected
  records stand alone, so the others are still written (at most 2n-1 calls for n records, and
  only on that path);
- when the HTTP layer gives up on a transient failure (``RetriableError``), that batch and the
  remaining ones of the call fail with ``retriable=True`` and are not sent: the CRM is down or
  throttling, the plan stays pending for the next run;
- errors no record can fix are raised: ``AuthError``, ``MissingScopes`` (a token without write
  scope), ``QuotaExhausted``, and a request the API refuses as a whole (a bug here).

A ``(id, {})`` pair is a no-op that succeeds without a call; an id given twice, or a key that is
not an owned field, is a ValueError (a bug in the caller).

**Follow-ups** (retention programs, programs.py): one object per call, for the account owner.

- HubSpot: a task (``POST /crm/v3/objects/tasks``: ``hs_task_subject``, ``hs_task_body``,
  ``hs_timestamp`` = the due date, status ``NOT_STARTED``, priority ``HIGH``, type ``TODO``,
  ``hubspot_owner_id`` = the company's owner), associated to the company (type 192) in the same
  call. The id is the task's.
- Salesforce: a Task (``POST /sobjects/Task``: ``WhatId`` = the Account, ``OwnerId`` = the
  Account's ``OwnerId``, ``Subject``, ``Description``, ``Status`` "Not Started", ``Priority``
  "High", ``ActivityDate`` = the due date). The id is the Task's.
- Intercom: a **tag** on the company named ``subject`` (``POST /tags`` with ``companies``);
  ``body`` and ``due`` are not kept (a tag has no text). Not a note: Intercom notes live on
  contacts only and the API cannot delete them, so a note could not be rolled back; a tag can
  be removed (``untag``). Intercom companies have no owner either: the tag is what the owner's
  company views and filters show. The id is ``"<company id>/<tag id>"``.

Creates are not idempotent at HubSpot and Salesforce: they are sent as non-idempotent requests,
which the HTTP layer never repeats after a request was sent (only after a throttle or a
connection that never opened). After an ambiguous failure the caller finds out with
``find_followup(record_id, marker)``: the follow-up on that record whose subject contains
``marker`` (letters, digits and ``-``), through the record's associated tasks (HubSpot), a
SOQL ``Subject LIKE`` on its Tasks (Salesforce), or its tags (Intercom), never a search index
that lags. Tagging is idempotent in Intercom (find-or-create by name, then set), so it is sent as
such. ``delete_followup`` answers False when the object was gone already (HubSpot archive,
Salesforce recycle bin, Intercom untag); a record that no longer exists raises ``NotFound``
from ``create_followup``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import tap_crm.settings as tap_settings
from crm_connectors.errors import (
    CrmError,
    FatalError,
    MissingScopes,
    NotFound,
    RetriableError,
    WriteError,
)
from crm_connectors.http import VendorClient
from crm_connectors.hubspot.client import BATCH_MAX as HUBSPOT_BATCH_MAX
from crm_connectors.hubspot.client import HubSpotClient
from crm_connectors.intercom.client import IntercomClient
from crm_connectors.salesforce.client import SalesforceClient

from .fields import (
    HUBSPOT_GROUP,
    HUBSPOT_GROUP_LABEL,
    OWNED,
    CrmField,
    InvalidValue,
    epoch_seconds,
    from_crm,
    normalize,
)

log = logging.getLogger(__name__)

#: Salesforce sObject Collections take at most 200 records [CRM-API.md §2.5].
SALESFORCE_BATCH_MAX = 200
#: Statuses of an API error that concern the record(s) of the call, not the run.
_RECORD_STATUSES = frozenset({400, 404, 409, 410, 422})
#: Salesforce per-record codes worth another try later: a row lock held by another transaction.
_SF_RETRIABLE = frozenset({"UNABLE_TO_LOCK_ROW"})
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What ``ensure_fields`` found and did, by the CRM's field names. ``missing`` lists the
    owned fields that are not writable yet; ``message`` says what to do about them."""

    crm: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True, slots=True)
class WriteResult:
    """One record's outcome. ``error_code`` is the vendor's code (``OBJECT_NOT_FOUND``,
    ``ENTITY_IS_DELETED``, ``company_not_found``...) or ours (``INVALID_VALUE``, ``NOT_SENT``);
    ``detail`` is our own words, naming fields, never values."""

    id: str
    ok: bool
    error_code: str | None = None
    retriable: bool = False
    detail: str = ""


class CrmWriter(Protocol):
    crm: str
    object: str
    batch_max: int
    fields: tuple[CrmField, ...]

    def ensure_fields(self, *, create: bool = True) -> SetupReport: ...

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def write(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]: ...

    def create_followup(
        self, record_id: str, subject: str, body: str, *, due: dt.date | None = None
    ) -> str: ...

    def find_followup(self, record_id: str, marker: str) -> str | None: ...

    def delete_followup(self, object_id: str) -> bool: ...

    def close(self) -> None: ...


#: A follow-up is due this many days after it is made, unless the caller says when.
FOLLOWUP_DUE_DAYS = 3
#: HubSpot's default association type of a task to a company [BEHAVIOR.md, Associations].
_HUBSPOT_TASK_TO_COMPANY = 192
_MARKER = re.compile(r"^[A-Za-z0-9-]{6,64}\Z")


def _due(due: dt.date | None) -> dt.date:
    if due is not None:
        return due
    return dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=FOLLOWUP_DUE_DAYS)


def _check_marker(marker: str) -> str:
    if not _MARKER.match(marker):
        raise ValueError("a follow-up marker is 6 to 64 letters, digits or '-'")
    return marker


@dataclass(frozen=True, slots=True)
class _Change:
    index: int  # position in the caller's list
    id: str
    values: dict[CrmField, Any]  # canonical values by owned field


_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _code(err: CrmError) -> str:
    return err.code or type(err).__name__


def _is_record_error(err: CrmError) -> bool:
    """An error answer about the record(s) sent, which another record would not get."""
    return (
        isinstance(err, (FatalError, WriteError))
        and not isinstance(err, MissingScopes)
        and (err.status in _RECORD_STATUSES)
    )


def _listing(fields: Sequence[CrmField]) -> str:
    return "".join(f"\n  - {cf.describe()}" for cf in fields)


_W = TypeVar("_W", bound="_Writer")


class _Writer:
    """The write loop shared by the adapters; subclasses send one batch (``_send``)."""

    crm: str = ""
    object: str = ""
    batch_max: int = 1
    client: VendorClient

    def __init__(self) -> None:
        self.fields: tuple[CrmField, ...] = OWNED[self.crm]
        self._by_key = {cf.key: cf for cf in self.fields}

    def close(self) -> None:
        self.client.close()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def write(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult | None] = [None] * len(changes)
        ready: list[_Change] = []
        seen: set[str] = set()
        for index, (record_id, values) in enumerate(changes):
            rid = str(record_id)
            if rid in seen:
                raise ValueError(f"{self.crm} record {rid} is given twice in one write")
            seen.add(rid)
            unknown = sorted(set(values) - set(self._by_key))
            if unknown:
                raise ValueError(f"not fields target-health owns: {', '.join(unknown)}")
            try:
                canonical = {self._by_key[k]: normalize(k, v) for k, v in values.items()}
            except InvalidValue as err:
                out[index] = WriteResult(rid, False, "INVALID_VALUE", False, str(err))
                continue
            if canonical:
                ready.append(_Change(index, rid, canonical))
            else:
                out[index] = WriteResult(rid, True)
        halted: RetriableError | None = None
        for batch in _chunks(ready, self.batch_max):
            results: list[WriteResult]
            if halted is None:
                try:
                    results = self._send(batch)
                except RetriableError as err:
                    halted = err
                    log.warning("%s; the rest of this write is left for a later run", err)
                    results = [
                        WriteResult(
                            c.id, False, _code(err), True, "the CRM did not accept the call"
                        )
                        for c in batch
                    ]
            else:
                results = [
                    WriteResult(c.id, False, "NOT_SENT", True, "not sent: an earlier call failed")
                    for c in batch
                ]
            for change, result in zip(batch, results, strict=True):
                out[change.index] = result
        done = [r for r in out if r is not None]
        failed = sum(not r.ok for r in done)
        log.info("%s: wrote %d record(s), %d failed", self.crm, len(done) - failed, failed)
        return done

    def _send(self, batch: Sequence[_Change]) -> list[WriteResult]:
        raise NotImplementedError


# -- HubSpot -------------------------------------------------------------------------------------


def _hubspot_value(cf: CrmField, value: Any) -> str:
    """HubSpot stores property values as text; "" clears one [BEHAVIOR.md, Property values]."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


class HubSpotWriter(_Writer):
    """HubSpot company properties in the ``customer_health`` group."""

    crm = "hubspot"
    object = "companies"
    batch_max = HUBSPOT_BATCH_MAX
    client: HubSpotClient

    def __init__(self, client: HubSpotClient) -> None:
        super().__init__()
        self.client = client

    def ensure_fields(self, *, create: bool = True) -> SetupReport:
        api = self.client.api
        have = {str(p.get("name")): p for p in self.client.properties(self.object)}
        existing = [cf.name for cf in self.fields if cf.name in have]
        todo = [cf for cf in self.fields if cf.name not in have]
        created: list[str] = []
        archived: list[str] = []
        denied: MissingScopes | None = None
        if todo and create:
            try:
                self._ensure_group()
                for cf in todo:
                    try:
                        api.request(
                            "POST",
                            f"/crm/v3/properties/{self.object}",
                            json=cf.definition(),
                            route="POST /crm/v3/properties/{t}",
                            idempotent=True,  # a repeated create answers 409, handled below
                        )
                        created.append(cf.name)
                    except WriteError as err:
                        if err.status != 409:
                            raise
                        # Made meanwhile, or archived under this name (an archived name is taken).
                        (archived if self._archived(cf.name) else existing).append(cf.name)
            except MissingScopes as err:
                denied = err
        missing = [cf for cf in todo if cf.name not in created and cf.name not in existing]
        notes = _drift_hubspot(self.fields, have)
        if missing:
            why = ""
            if denied is not None:
                scopes = ", ".join(denied.scopes) or "to write company properties"
                why = f"the app lacks the scope {scopes} (grant it, or create them by hand)"
            elif not create:
                why = "creating them was not asked for"
            if archived:
                notes.append(
                    f"archived in HubSpot (restore them under Settings > Properties > Archived):"
                    f" {', '.join(archived)}"
                )
            notes.insert(
                0,
                f"HubSpot: create these company properties in the group {HUBSPOT_GROUP!r}"
                f" ({HUBSPOT_GROUP_LABEL}){' - ' + why if why else ''}:{_listing(missing)}",
            )
            notes.append("Then run `target-health setup` again.")
        return SetupReport(
            self.crm, created, existing, [cf.name for cf in missing], "\n".join(notes)
        )

    def _ensure_group(self) -> None:
        api = self.client.api
        body = api.request(
            "GET",
            f"/crm/v3/properties/{self.object}/groups",
            route="GET /crm/v3/properties/{t}/groups",
        )
        names = {str(g.get("name")) for g in (body or {}).get("results") or []}
        if HUBSPOT_GROUP in names:
            return
        try:
            api.request(
                "POST",
                f"/crm/v3/properties/{self.object}/groups",
                json={"name": HUBSPOT_GROUP, "label": HUBSPOT_GROUP_LABEL, "displayOrder": -1},
                route="POST /crm/v3/properties/{t}/groups",
                idempotent=True,
            )
        except WriteError as err:
            if err.status != 409:  # 409: made meanwhile
                raise

    def _archived(self, name: str) -> bool:
        try:
            self.client.api.request(
                "GET",
                f"/crm/v3/properties/{self.object}/{urllib.parse.quote(name, safe='')}",
                params={"archived": "true"},
                route="GET /crm/v3/properties/{t}/{name}",
            )
        except NotFound:
            return False
        return True

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        names = [cf.name for cf in self.fields]
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(str(i) for i in ids)), HUBSPOT_BATCH_MAX):
            body = self.client.api.request(
                "POST",
                f"/crm/v3/objects/{self.object}/batch/read",
                json={"properties": names, "inputs": [{"id": i} for i in chunk]},
                route="POST /crm/v3/objects/{t}/batch/read",
                idempotent=True,
            )
            # 207: unknown ids come back as one OBJECT_NOT_FOUND error; they are left out.
            wanted = set(chunk)
            for record in (body or {}).get("results") or []:
                rid = str(record.get("id"))
                if rid not in wanted:
                    continue  # a merged-away id answered by its surviving record
                props = record.get("properties") or {}
                out[rid] = {cf.key: from_crm(cf, props.get(cf.name)) for cf in self.fields}
        return out

    def _send(self, batch: Sequence[_Change]) -> list[WriteResult]:
        inputs = [
            {
                "id": change.id,
                # Echoed on results and errors: ties them to inputs even when HubSpot answers
                # for a merged-away id with its survivor's id [CRM-API.md §1.5].
                "objectWriteTraceId": str(n),
                "properties": {cf.name: _hubspot_value(cf, v) for cf, v in change.values.items()},
            }
            for n, change in enumerate(batch)
        ]
        try:
            body = self.client.api.request(
                "POST",
                f"/crm/v3/objects/{self.object}/batch/update",
                json={"inputs": inputs},
                route="POST /crm/v3/objects/{t}/batch/update",
                idempotent=True,
            )
        except CrmError as err:
            if not _is_record_error(err):
                raise
            # One invalid value fails the whole batch: split until it stands alone.
            if len(batch) == 1:
                return [
                    WriteResult(
                        batch[0].id,
                        False,
                        _code(err),
                        False,
                        "HubSpot refused a value of this record",
                    )
                ]
            half = len(batch) // 2
            return self._send(batch[:half]) + self._send(batch[half:])
        body = body or {}
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

    # -- follow-ups (tasks) ----------------------------------------------------------------------

    def _owner(self, record_id: str) -> str | None:
        company = self.client.api.request(
            "GET",
            f"/crm/v3/objects/{self.object}/{urllib.parse.quote(record_id, safe='')}",
            params={"properties": "hubspot_owner_id"},
            route="GET /crm/v3/objects/{t}/{id}",
        )
        owner = ((company or {}).get("properties") or {}).get("hubspot_owner_id")
        return str(owner) if owner else None

    def create_followup(
        self, record_id: str, subject: str, body: str, *, due: dt.date | None = None
    ) -> str:
        owner = self._owner(record_id)  # NotFound when the company is gone
        when = _due(due)
        props = {
            "hs_timestamp": f"{when.isoformat()}T00:00:00Z",
            "hs_task_subject": subject,
            "hs_task_body": body,
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
            "hs_task_type": "TODO",
        }
        if owner:
            props["hubspot_owner_id"] = owner
        created = self.client.api.request(
            "POST",
            "/crm/v3/objects/tasks",
            json={
                "properties": props,
                "associations": [
                    {
                        "to": {"id": record_id},
                        "types": [
                            {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": _HUBSPOT_TASK_TO_COMPANY,
                            }
                        ],
                    }
                ],
            },
            route="POST /crm/v3/objects/{t}",
            idempotent=False,  # a repeat would make a second task
        )
        return str((created or {})["id"])

    def find_followup(self, record_id: str, marker: str) -> str | None:
        _check_marker(marker)
        ids: list[str] = []
        after: str | None = None
        try:
            while True:
                params: dict[str, Any] = {"limit": 500}
                if after:
                    params["after"] = after
                body = self.client.api.request(
                    "GET",
                    f"/crm/v3/objects/{self.object}/{urllib.parse.quote(record_id, safe='')}"
                    "/associations/tasks",
                    params=params,
                    route="GET /crm/v3/objects/{t}/{id}/associations/{to}",
                )
                ids.extend(str(r.get("id")) for r in (body or {}).get("results") or [])
                after = (((body or {}).get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        except NotFound:
            return None
        for chunk in _chunks(ids, HUBSPOT_BATCH_MAX):
            body = self.client.api.request(
                "POST",
                "/crm/v3/objects/tasks/batch/read",
                json={"properties": ["hs_task_subject"], "inputs": [{"id": i} for i in chunk]},
                route="POST /crm/v3/objects/{t}/batch/read",
                idempotent=True,
            )
            for task in (body or {}).get("results") or []:
                if marker in str((task.get("properties") or {}).get("hs_task_subject") or ""):
                    return str(task.get("id"))
        return None

    def delete_followup(self, object_id: str) -> bool:
        path = f"/crm/v3/objects/tasks/{urllib.parse.quote(object_id, safe='')}"
        try:  # HubSpot answers 204 to archiving a task that is gone: ask first
            self.client.api.request("GET", path, route="GET /crm/v3/objects/{t}/{id}")
        except NotFound:
            return False
        self.client.api.request("DELETE", path, route="DELETE /crm/v3/objects/{t}/{id}")
        return True


def _drift_hubspot(fields: Sequence[CrmField], have: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Notes on owned properties whose definition in HubSpot differs from ours."""
    notes = []
    for cf in fields:
        prop = have.get(cf.name)
        if prop is None:
            continue
        if prop.get("type") != cf.type:
            notes.append(f"{cf.name} has type {prop.get('type')} in HubSpot, not {cf.type}")
        options = {str(o.get("value")) for o in prop.get("options") or []}
        lost = [o for o in cf.field.options if o not in options]
        if cf.field.options and lost:
            notes.append(f"{cf.name} lacks the options {', '.join(lost)}: such writes will fail")
    return notes


# -- Salesforce ----------------------------------------------------------------------------------


def _soql_list(ids: Sequence[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)  # ids match _SF_ID: nothing to escape


class SalesforceWriter(_Writer):
    """Salesforce Account custom fields, created with the Tooling API."""

    crm = "salesforce"
    object = "Account"
    batch_max = SALESFORCE_BATCH_MAX
    client: SalesforceClient

    def __init__(self, client: SalesforceClient, *, permission_set_id: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.permission_set_id = permission_set_id or None
        self._visible: dict[str, dict[str, Any]] | None = None  # describe, by lower-case name

    def _describe(self) -> dict[str, dict[str, Any]]:
        body = self.client.describe(self.object)
        self._visible = {str(f.get("name")).lower(): f for f in body.get("fields") or []}
        return self._visible

    def _writable(self, cf: CrmField) -> bool:
        f = (self._visible or {}).get(cf.name.lower())
        return f is not None and bool(f.get("updateable"))

    def ensure_fields(self, *, create: bool = True) -> SetupReport:
        api = self.client.api
        have = self._describe()
        existing = [cf.name for cf in self.fields if cf.name.lower() in have]
        todo = [cf for cf in self.fields if cf.name.lower() not in have]
        created: list[str] = []
        denied: MissingScopes | None = None
        if todo and create:
            try:
                for cf in todo:
                    try:
                        api.request(
                            "POST",
                            "/tooling/sobjects/CustomField",
                            json=cf.definition(),
                            route="POST /tooling/sobjects/CustomField",
                            idempotent=True,  # a repeated create answers DUPLICATE_DEVELOPER_NAME
                        )
                        created.append(cf.name)
                    except FatalError as err:
                        if err.status != 400 or err.code != "DUPLICATE_DEVELOPER_NAME":
                            raise
                        existing.append(cf.name)  # there, but hidden from this user (no FLS)
            except MissingScopes as err:
                denied = err
            self._describe()
        present = set(created) | set(existing)
        hidden = [cf for cf in self.fields if cf.name in present and not self._writable(cf)]
        if hidden and create and denied is None and self.permission_set_id:
            try:
                self._grant(hidden)
            except MissingScopes as err:
                denied = err
            self._describe()
            hidden = [cf for cf in hidden if not self._writable(cf)]
        absent = [cf for cf in todo if cf.name not in present]
        notes = []
        if absent:
            why = (
                "the API user may not create fields (it needs Customize Application)"
                if denied is not None
                else ("creating them was not asked for" if not create else "")
            )
            notes.append(
                "Salesforce: create these Account fields (Setup > Object Manager > Account >"
                f" Fields & Relationships){' - ' + why if why else ''}:{_listing(absent)}"
            )
        if hidden:
            how = (
                "or set salesforce_permission_set_id to let target-health grant it"
                if not self.permission_set_id
                else "the grant through FieldPermissions was refused or did not take"
            )
            notes.append(
                "Salesforce: grant the integration user Read and Edit field-level security on"
                f" these Account fields ({how}):{_listing(hidden)}"
            )
        if absent or hidden:
            notes.append("Then run `target-health setup` again.")
        missing = [cf.name for cf in self.fields if cf in absent or cf in hidden]
        return SetupReport(self.crm, created, existing, missing, "\n".join(notes))

    def _grant(self, fields: Sequence[CrmField]) -> None:
        for cf in fields:
            try:
                self.client.api.request(
                    "POST",
                    "/sobjects/FieldPermissions",
                    json={
                        "ParentId": self.permission_set_id,
                        "SobjectType": self.object,
                        "Field": f"{self.object}.{cf.name}",
                        "PermissionsRead": True,
                        "PermissionsEdit": True,
                    },
                    route="POST /sobjects/FieldPermissions",
                    idempotent=True,  # a repeated grant answers DUPLICATE_VALUE
                )
            except FatalError as err:
                if err.status != 400:
                    raise
                log.warning(
                    "salesforce: field permission on %s not granted (%s)", cf.name, _code(err)
                )

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if self._visible is None:
            self._describe()
        # Select only the owned fields this user can see: SOQL fails on an unknown column.
        columns = [cf for cf in self.fields if cf.name.lower() in (self._visible or {})]
        valid = [i for i in dict.fromkeys(str(i) for i in ids) if _SF_ID.match(i)]
        by_prefix = {
            i[:15]: i for i in valid
        }  # an 18-character id starts with the 15-character one
        select = ", ".join(["Id", *(cf.name for cf in columns)])
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(valid, SALESFORCE_BATCH_MAX):
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

    def _send(self, batch: Sequence[_Change]) -> list[WriteResult]:
        records = [
            {
                "attributes": {"type": self.object},
                "id": change.id,
                **{cf.name: v for cf, v in change.values.items()},
            }
            for change in batch
        ]
        body = self.client.api.request(
            "PATCH",
            "/composite/sobjects",
            json={"allOrNone": False, "records": records},
            route="PATCH /composite/sobjects",
            idempotent=True,
        )
        # HTTP 200 with one result per record, in request order [CRM-API.md §2.5].
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
            results.append(WriteResult(change.id, False, code, code in _SF_RETRIABLE, detail))
        return results

    # -- follow-ups (Tasks) ----------------------------------------------------------------------

    def create_followup(
        self, record_id: str, subject: str, body: str, *, due: dt.date | None = None
    ) -> str:
        if not _SF_ID.match(record_id):
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
            "ActivityDate": _due(due).isoformat(),
        }
        owner = page.records[0].get("OwnerId")
        if owner:
            task["OwnerId"] = owner
        created = self.client.api.request(
            "POST",
            "/sobjects/Task",
            json=task,
            route="POST /sobjects/{T}",
            idempotent=False,  # a repeat would make a second Task
        )
        return str((created or {})["id"])

    def find_followup(self, record_id: str, marker: str) -> str | None:
        _check_marker(marker)  # letters, digits and '-': nothing to escape, no LIKE wildcard
        if not _SF_ID.match(record_id):
            return None
        page = self.client.query(
            f"SELECT Id FROM Task WHERE WhatId = '{record_id}' AND Subject LIKE '%{marker}%'"
        )
        return str(page.records[0]["Id"]) if page.records else None

    def delete_followup(self, object_id: str) -> bool:
        if not _SF_ID.match(object_id):
            return False
        try:
            self.client.api.request(
                "DELETE", f"/sobjects/Task/{object_id}", route="DELETE /sobjects/{T}/{id}"
            )
        except NotFound:  # NOT_FOUND, or ENTITY_IS_DELETED: in the recycle bin already
            return False
        return True


# -- Intercom ------------------------------------------------------------------------------------


def _intercom_value(cf: CrmField, value: Any) -> Any:
    if value is not None and cf.field.kind == "datetime":
        return epoch_seconds(value)  # date attributes hold unix seconds
    return value


class IntercomWriter(_Writer):
    """Intercom company data attributes; one company per call (Intercom has no batch writes
    [CRM-API.md §3.3])."""

    crm = "intercom"
    object = "companies"
    batch_max = 1
    client: IntercomClient

    def __init__(self, client: IntercomClient) -> None:
        super().__init__()
        self.client = client

    def _attributes(self) -> list[dict[str, Any]]:
        body = self.client.api.request(
            "GET",
            "/data_attributes",
            params={"model": "company", "include_archived": "true"},
            route="GET /data_attributes",
        )
        return [a for a in (body or {}).get("data") or [] if a.get("custom")]

    def ensure_fields(self, *, create: bool = True) -> SetupReport:
        api = self.client.api
        attrs = {str(a.get("name")): a for a in self._attributes()}
        existing = [
            cf.name for cf in self.fields if cf.name in attrs and not attrs[cf.name].get("archived")
        ]
        todo = [cf for cf in self.fields if cf.name not in existing]
        created: list[str] = []
        denied: MissingScopes | None = None
        if todo and create:
            try:
                for cf in todo:
                    old = attrs.get(cf.name)
                    try:
                        if old is not None:  # ours, archived by someone: restore it
                            api.request(
                                "PUT",
                                f"/data_attributes/{old.get('id')}",
                                json={"archived": False},
                                route="PUT /data_attributes/{id}",
                            )
                        else:
                            api.request(
                                "POST",
                                "/data_attributes",
                                json=cf.definition(),
                                route="POST /data_attributes",
                                idempotent=True,  # a repeated create answers "You already have"
                            )
                        created.append(cf.name)
                    except FatalError as err:
                        if err.status != 400 or err.code != "parameter_invalid":
                            raise
                        now = {str(a.get("name")): a for a in self._attributes()}
                        if cf.name not in now:
                            raise
                        existing.append(cf.name)  # made meanwhile
            except MissingScopes as err:
                denied = err
        missing = [cf for cf in todo if cf.name not in created and cf.name not in existing]
        message = ""
        if missing:
            why = (
                "the access token may not write data attributes"
                if denied is not None
                else ("creating them was not asked for" if not create else "")
            )
            message = (
                "Intercom: create these company data attributes (Settings > Data > Companies)"
                f"{' - ' + why if why else ''}:{_listing(missing)}\nThen run `target-health setup`"
                " again."
            )
        return SetupReport(self.crm, created, existing, [cf.name for cf in missing], message)

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rid in dict.fromkeys(str(i) for i in ids):
            company = self._company(rid)
            if company is None:
                continue
            custom = company.get("custom_attributes") or {}
            out[rid] = {cf.key: from_crm(cf, custom.get(cf.name)) for cf in self.fields}
        return out

    def _send(self, batch: Sequence[_Change]) -> list[WriteResult]:
        (change,) = batch
        try:
            self.client.api.request(
                "PUT",
                f"/companies/{urllib.parse.quote(change.id, safe='')}",
                json={
                    "custom_attributes": {
                        cf.name: _intercom_value(cf, v) for cf, v in change.values.items()
                    }
                },
                route="PUT /companies/{id}",
            )
        except CrmError as err:
            if not _is_record_error(err):
                raise
            return [WriteResult(change.id, False, _code(err), False, "Intercom refused it")]
        return [WriteResult(change.id, True)]

    # -- follow-ups (company tags) ---------------------------------------------------------------

    def _company(self, record_id: str) -> dict[str, Any] | None:
        """``GET /companies/{id}``; None when Intercom has no such company."""
        try:
            company = self.client.api.request(
                "GET",
                f"/companies/{urllib.parse.quote(record_id, safe='')}",
                route="GET /companies/{id}",
            )
        except NotFound:
            return None
        return company or {}

    def _company_tags(self, record_id: str) -> list[dict[str, Any]] | None:
        company = self._company(record_id)
        if company is None:
            return None
        return list((company.get("tags") or {}).get("tags") or [])

    def create_followup(
        self, record_id: str, subject: str, body: str, *, due: dt.date | None = None
    ) -> str:
        tag = self.client.api.request(
            "POST",
            "/tags",
            json={"name": subject, "companies": [{"id": record_id}]},
            route="POST /tags",
            idempotent=True,  # find-or-create by name, then set: a repeat changes nothing
        )
        return f"{record_id}/{(tag or {})['id']}"

    def find_followup(self, record_id: str, marker: str) -> str | None:
        _check_marker(marker)
        for tag in self._company_tags(record_id) or []:
            if marker in str(tag.get("name") or ""):
                return f"{record_id}/{tag.get('id')}"
        return None

    def delete_followup(self, object_id: str) -> bool:
        record_id, _, tag_id = object_id.partition("/")
        tags = self._company_tags(record_id) or []
        tag = next((t for t in tags if str(t.get("id")) == tag_id), None)
        if tag is None:
            return False  # untagged already, or the company is gone
        self.client.api.request(
            "POST",
            "/tags",
            json={"name": tag.get("name"), "companies": [{"id": record_id, "untag": True}]},
            route="POST /tags",
            idempotent=True,
        )
        return True


# -- from settings -------------------------------------------------------------------------------


def writers(config: Mapping[str, Any], **client_kw: Any) -> list[CrmWriter]:
    """One adapter per configured CRM, from the same credential settings as tap-crm
    (``hubspot_access_token``, ``salesforce_refresh_token``, ...; tap_crm.settings builds the
    clients), plus ``salesforce_permission_set_id`` for field-level security grants."""
    out: list[CrmWriter] = []
    try:
        for crm in tap_settings.configured_crms(config):
            if crm == "hubspot":
                out.append(HubSpotWriter(tap_settings.hubspot(config, **client_kw).client))
            elif crm == "salesforce":
                client = tap_settings.salesforce(config, **client_kw).client
                permission_set = config.get("salesforce_permission_set_id")
                out.append(SalesforceWriter(client, permission_set_id=permission_set))
            else:
                out.append(IntercomWriter(tap_settings.intercom(config, **client_kw).client))
    except BaseException:
        for writer in out:
            writer.close()
        raise
    return out
