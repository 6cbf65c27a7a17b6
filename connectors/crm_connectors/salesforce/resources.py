"""Salesforce resources: one per sObject, read incrementally on ``SystemModstamp``. No Singer
here; tap-crm adapts these to streams.

Reads (:class:`SalesforceResource`):

1. **REST, keyset by (SystemModstamp, Id).** ``queryAll`` (the recycle bin too, so deleted rows
   arrive with ``IsDeleted`` true and are emitted ``deleted=True`` [API.md §2.2]) with
   ``WHERE SystemModstamp > W OR (SystemModstamp = W AND Id > 'last')
   ORDER BY SystemModstamp ASC, Id ASC``, ``Sforce-Query-Options: batchSize=2000``, following
   ``nextRecordsUrl``. Datetime literals are unquoted (a quoted one is an INVALID_FIELD error
   [API.md §2.2]). Every record is emitted with ``Bookmark(ms, Id)``: ties on one
   millisecond are ordered by Id, so a resume inside a tie block repeats and loses nothing.
2. **Expired locators.** ``INVALID_QUERY_LOCATOR`` (idle past ~15 min, or released as the
   oldest of ~10 open cursors [API.md §2.2]) restarts the query from the last bookmark
   emitted, not from scratch.
3. **Bulk API 2.0 backfill.** On a first run (no watermark), a ``SELECT COUNT()`` decides:
   above ``bulk_threshold`` rows a ``queryAll`` job is created, polled with backoff, and its
   CSV results paged by ``Sforce-Locator`` [API.md §2.7], typed from describe. Job results
   have no order, so bulk records carry the starting bookmark, except the last one, which
   carries ``Bookmark(job start, None)``: from then on everything older than the job is known
   emitted. A REST pass from the job's start time (``>=``) then catches changes made during it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from ..base import Bookmark, Record, Resource
from ..errors import ConfigError, CrmError, FatalError, NotFound, Unavailable
from ..paging import Progress
from ..readahead import read_ahead
from ..timefmt import iso_to_ms, ms_to_iso
from .client import BATCH_MAX, SalesforceClient

log = logging.getLogger(__name__)

#: Read by default: standard objects of every edition [API.md §2.3]. One the org lacks or the
#: integration user cannot see is left out with a warning; custom objects (the sandbox's
#: NPS_Response__c, a customer's Subscription__c) are read only when named in
#: ``salesforce_objects``.
OBJECTS = ("Account", "Contact", "Opportunity", "Case", "Task", "User")

#: The replication key: changes on every write, system ones included [API.md §2.2].
MODSTAMP = "SystemModstamp"

#: Fields marked PII (``x-pii``), per object: names, emails, phones, postal address parts and
#: free text a person typed. Account names, titles and business data are not marked.
PII_FIELDS: dict[str, dict[str, str]] = {
    "Contact": {
        "FirstName": "name",
        "LastName": "name",
        "Name": "name",
        "Salutation": "name",
        "MiddleName": "name",
        "Suffix": "name",
        "Email": "email",
        "Phone": "phone",
        "MobilePhone": "phone",
        "HomePhone": "phone",
        "OtherPhone": "phone",
        "Fax": "phone",
        "AssistantName": "name",
        "AssistantPhone": "phone",
        "MailingStreet": "address",
        "MailingCity": "address",
        "MailingPostalCode": "address",
        "MailingState": "address",
        "MailingCountry": "address",
        "MailingLatitude": "address",
        "MailingLongitude": "address",
        "OtherStreet": "address",
        "OtherCity": "address",
        "OtherPostalCode": "address",
        "OtherState": "address",
        "OtherCountry": "address",
        "OtherLatitude": "address",
        "OtherLongitude": "address",
        # a date of birth: no kind of its own; encrypted as text, never normalised
        "Birthdate": "free_text",
        "Description": "free_text",
        # a bounce reason usually quotes the address that bounced
        "EmailBouncedReason": "free_text",
    },
    "Account": {
        "Phone": "phone",
        "BillingStreet": "address",
        "BillingPostalCode": "address",
        "ShippingStreet": "address",
        "ShippingPostalCode": "address",
    },
    "Case": {
        "Description": "free_text",
        "Subject": "free_text",
        "SuppliedEmail": "email",
        "SuppliedName": "name",
        "SuppliedPhone": "phone",
        # the case contact's details, copied onto the case by Salesforce
        "ContactEmail": "email",
        "ContactPhone": "phone",
        "ContactMobile": "phone",
        "ContactFax": "phone",
        "Comments": "free_text",
    },
    "Task": {"Description": "free_text", "Subject": "free_text"},
    "Opportunity": {"Description": "free_text"},
    "User": {
        "Email": "email",
        "Name": "name",
        "FirstName": "name",
        "LastName": "name",
        "Username": "email",
        "Phone": "phone",
        "MobilePhone": "phone",
    },
    # the sandbox's NPS object (read only when named in salesforce_objects): its comment is
    # free text; an org without the object or the field marks nothing
    "NPS_Response__c": {"Comment__c": "free_text"},
}

#: Compound and binary fields cannot be selected in Bulk queries and carry no extra data.
_UNSELECTABLE = {"address", "location", "base64"}
_NUMBER = {"double", "currency", "percent"}
_TYPED = frozenset({*_NUMBER, "int", "boolean", "date", "datetime"})


def json_type(sf_type: str, nillable: bool = True) -> dict[str, Any]:
    """The JSON Schema of a describe field type [API.md §2.3]; unknown types are strings."""
    if sf_type in _NUMBER:
        out: dict[str, Any] = {"type": "number"}
    elif sf_type == "int":
        out = {"type": "integer"}
    elif sf_type == "boolean":
        out = {"type": "boolean"}
    elif sf_type == "date":
        out = {"type": "string", "format": "date"}
    elif sf_type == "datetime":
        out = {"type": "string", "format": "date-time"}
    else:
        out = {"type": "string"}
    if nillable:
        out["type"] = [out["type"], "null"]
    return out


def soql_datetime(ms: int) -> str:
    """A SOQL datetime literal, unquoted [API.md §2.2]."""
    return ms_to_iso(ms)


def convert(value: Any, sf_type: str) -> Any:
    """A REST JSON value or a Bulk CSV cell as its schema type. Empty cells are null (CSV cannot
    tell them apart). A value that does not parse is null, logged by type only (values may be
    personal data)."""
    if value is None or value == "":
        return None
    if sf_type not in _TYPED:  # text of every kind: most fields, so checked first
        return value if type(value) is str else str(value)
    try:
        if sf_type in _NUMBER:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not finite")
            return number
        if sf_type == "int":
            return int(float(value)) if isinstance(value, str) and "." in value else int(value)
        if sf_type == "boolean":
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered not in ("true", "false"):
                raise ValueError("not a boolean")
            return lowered == "true"
        if sf_type == "date":
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
        if sf_type == "datetime":
            text = str(value)
            if len(text) == 28 and text.endswith("+0000") and text[19] == ".":
                return text[:23] + "Z"  # REST's UTC form, already at millisecond precision
            return ms_to_iso(iso_to_ms(text))
    except (ValueError, TypeError, OverflowError):
        log.warning("salesforce: a %s value did not parse; emitted as null", sf_type)
        return None
    return str(value)


class SalesforceResource:
    """One sObject, read by REST ``queryAll`` or, for a large first run, Bulk API 2.0."""

    primary_key: tuple[str, ...] = ("Id",)
    replication_key: str | None = MODSTAMP

    def __init__(
        self,
        client: SalesforceClient,
        sobject: str,
        *,
        start_date: int | None = None,
        bulk_threshold: int | None = 50_000,
        batch_size: int = BATCH_MAX,
        bulk_page_size: int | None = None,
        poll_cap: float = 30.0,
        optional: bool = False,
        setting: str = "salesforce_objects",
    ) -> None:
        self.client = client
        self.sobject = sobject
        #: Read by default rather than named by the user: when the org has no such object, or
        #: the user cannot see it, the stream is left out (Unavailable), not a setting to fix.
        self.optional = optional
        #: The setting that named it (a missing named object is that setting's error).
        self.setting = setting
        self.name = f"salesforce_{sobject}"
        self.start_date = start_date
        self.bulk_threshold = bulk_threshold
        self.batch_size = batch_size
        self.bulk_page_size = bulk_page_size
        self.poll_cap = poll_cap
        self._fields: list[dict[str, Any]] | None = None
        #: How the last read went: "rest" or "bulk" (for callers and tests).
        self.last_mode = ""

    # -- schema ----------------------------------------------------------------------------------

    def describe_fields(self) -> list[dict[str, Any]]:
        """Describe's fields that can be selected (read once per resource)."""
        if self._fields is None:
            try:
                fields = self.client.describe(self.sobject).get("fields") or []
            except NotFound as exc:
                if self.optional:
                    raise Unavailable(
                        f"the org has no object {self.sobject!r}, or the API user cannot see"
                        " it (grant Read on it to the integration user's permission set)",
                        **exc.call(),
                    ) from exc
                raise ConfigError(
                    f"Salesforce has no object {self.sobject!r}"
                    " (check its API name, e.g. Subscription__c, and the user's access)",
                    setting=self.setting,
                ) from exc
            self._fields = [
                f for f in fields if f.get("name") and f.get("type") not in _UNSELECTABLE
            ]
        return self._fields

    def catalog_types(self) -> list[dict[str, Any]]:
        """The selectable fields' name, type and nillable (all ``schema()`` and reads use), for
        the catalog (see base.CatalogTyped)."""
        return [
            {
                "name": str(f["name"]),
                "type": str(f.get("type") or "string"),
                "nillable": bool(f.get("nillable", True)),
            }
            for f in self.describe_fields()
        ]

    def use_catalog_types(self, saved: Any) -> bool:
        if not isinstance(saved, list) or not all(
            isinstance(f, dict)
            and isinstance(f.get("name"), str)
            and f["name"]
            and isinstance(f.get("type"), str)
            and isinstance(f.get("nillable"), bool)
            for f in saved
        ):
            return False
        self._fields = [
            {"name": f["name"], "type": f["type"], "nillable": f["nillable"]}
            for f in saved
            if f["type"] not in _UNSELECTABLE
        ]
        return True

    def field_types(self) -> dict[str, str]:
        return {str(f["name"]): str(f.get("type") or "string") for f in self.describe_fields()}

    def schema(self) -> dict[str, Any]:
        pii = PII_FIELDS.get(self.sobject, {})
        props: dict[str, Any] = {}
        for f in self.describe_fields():
            name = str(f["name"])
            prop = json_type(str(f.get("type") or "string"), bool(f.get("nillable", True)))
            if name == "Id":
                prop = {"type": "string"}
            if name in pii:
                prop["x-pii"] = pii[name]
            props[name] = prop
        return {
            "type": "object",
            "properties": props,
            "required": ["Id"],
            "additionalProperties": False,
        }

    # -- read ------------------------------------------------------------------------------------

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        try:
            yield from self._read(bookmark)
        except FatalError as err:
            if err.code != "INVALID_FIELD":
                raise
            # The catalog's field types name the fields queried: one deleted since discovery
            # is rejected until the catalog is rediscovered.
            raise FatalError(
                "a field the catalog lists may no longer exist in Salesforce;"
                " run discovery again (Meltano: --refresh-catalog)",
                **err.call(),
            ) from None

    def _read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        types = self.field_types()
        if MODSTAMP not in types or "Id" not in types:
            raise FatalError(
                f"{self.sobject} has no {MODSTAMP}/Id to read incrementally",
                vendor="salesforce",
                code="UNSUPPORTED_OBJECT",
            )
        names = list(types)
        if bookmark.watermark is None:
            if self.start_date is not None:
                bookmark = Bookmark(self.start_date)
            if self.bulk_threshold is not None and self._count(bookmark) > self.bulk_threshold:
                self.last_mode = "bulk"
                bulk_end = bookmark
                for rec, bulk_end in self._bulk(bookmark, names, types):
                    yield rec, bulk_end
                bookmark = bulk_end
                yield from self._rest(bookmark, names, types)
                return
        self.last_mode = "rest"
        yield from self._rest(bookmark, names, types)

    def _where(self, bookmark: Bookmark) -> str:
        if bookmark.watermark is None:
            return ""
        stamp = soql_datetime(bookmark.watermark)
        if bookmark.last_id is None:
            return f" WHERE {MODSTAMP} >= {stamp}"
        last = bookmark.last_id.replace("\\", "\\\\").replace("'", "\\'")
        # AND and OR mixed need parentheses in SOQL [API.md §2.2].
        return f" WHERE {MODSTAMP} > {stamp} OR ({MODSTAMP} = {stamp} AND Id > '{last}')"

    def _count(self, bookmark: Bookmark) -> int:
        return self.client.count(
            f"SELECT COUNT() FROM {self.sobject}{self._where(bookmark)}", deleted=True
        )

    def _rest(
        self, bookmark: Bookmark, names: Sequence[str], types: dict[str, str]
    ) -> Iterator[tuple[Record, Bookmark]]:
        select = f"SELECT {', '.join(names)} FROM {self.sobject}"
        last = bookmark
        restarts = 0
        while True:
            soql = f"{select}{self._where(last)} ORDER BY {MODSTAMP} ASC, Id ASC"
            first = partial(self.client.query, soql, deleted=True, batch_size=self.batch_size)
            new = Progress("salesforce", "GET /queryAll/{locator}")

            def more(page: Any, new: Progress = new) -> Callable[[], Any] | None:
                return (
                    partial(self.client.query_more, new(page.next_url)) if page.next_url else None
                )

            try:
                for page in read_ahead(first, more):
                    for raw in page.records:
                        rec = self._record(raw, types)
                        last = Bookmark(rec.modified, rec.id)
                        yield rec, last
                return
            except FatalError as err:
                if err.code != "INVALID_QUERY_LOCATOR":
                    raise
                restarts += 1
                if restarts > 100:
                    raise
                # The cursor expired (idle or released) [API.md §2.2]: a new query from
                # the last record emitted loses and repeats nothing.
                log.info("salesforce %s: query locator expired, resuming", self.sobject)

    def _bulk(
        self, bookmark: Bookmark, names: Sequence[str], types: dict[str, str]
    ) -> Iterator[tuple[Record, Bookmark]]:
        soql = f"SELECT {', '.join(names)} FROM {self.sobject}{self._where(bookmark)}"
        job = self.client.create_query_job(soql, deleted=True)
        job_id = str(job["id"])
        started = iso_to_ms(str(job["createdDate"]))
        self._wait(job_id)
        held: Record | None = None
        locator: str | None = None
        new = Progress("salesforce", "GET /jobs/query/{id}/results")
        while True:
            page = self.client.query_job_results(job_id, locator, self.bulk_page_size)
            for row in csv.DictReader(io.StringIO(page.csv)):
                rec = self._record(row, types)
                if held is not None:
                    yield held, bookmark
                held = rec
            locator = page.locator
            if locator is None:
                break
            new(locator)
        try:
            self.client.delete_query_job(job_id)
        except CrmError:
            log.info("salesforce %s: bulk job cleanup failed; it expires on its own", self.sobject)
        if held is not None:
            # Every row older than the job is now emitted: resume from its start time.
            yield held, Bookmark(started)

    def _wait(self, job_id: str) -> None:
        delay = 0.5
        while True:
            info = self.client.query_job(job_id)
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                raise FatalError(
                    f"bulk query job ended in state {state}",
                    vendor="salesforce",
                    route="GET /jobs/query/{id}",
                    code=str(info.get("errorMessage") or state)[:80],
                )
            self.client.sleep(delay)
            delay = min(delay * 2, self.poll_cap)

    def _record(self, raw: dict[str, Any], types: dict[str, str]) -> Record:
        data = {name: convert(raw.get(name), kind) for name, kind in types.items()}
        stamp = raw.get(MODSTAMP)
        modified = iso_to_ms(str(stamp)) if stamp else 0
        rid = str(raw["Id"])
        data["Id"] = rid
        return Record(rid, modified, data, deleted=bool(data.get("IsDeleted")))


class SalesforceConnector:
    """The Salesforce connector: the standard objects (those the org has and the user can see)
    plus every one named in ``objects`` (those must exist): a list (named in
    ``salesforce_objects``), or object -> the setting that names it."""

    vendor = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        objects: Sequence[str] | Mapping[str, str] = (),
        **resource_options: Any,
    ) -> None:
        self.client = client
        self.named = (
            dict(objects)
            if isinstance(objects, Mapping)
            else dict.fromkeys(objects, "salesforce_objects")
        )
        self.objects = tuple(dict.fromkeys([*OBJECTS, *self.named]))
        self._options = resource_options

    def resources(self) -> list[Resource]:
        return [
            SalesforceResource(
                self.client,
                o,
                optional=o not in self.named,
                setting=self.named.get(o, "salesforce_objects"),
                **self._options,
            )
            for o in self.objects
        ]

    def close(self) -> None:
        self.client.close()
