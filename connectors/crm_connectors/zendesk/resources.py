"""Zendesk resources: organizations, users, tickets (with their metrics) and satisfaction
ratings, read through the incremental exports. No Singer here; tap-crm adapts these to streams.

- **Users and tickets: cursor exports** (``/incremental/{users|tickets}/cursor``) [API.md
  §3.3]. A first read starts at ``start_time`` (the bookmark's watermark, else ``start_date``,
  else 0), later pages and later runs continue from ``after_cursor``, which stays usable at the
  end of the stream: the bookmark carries it as ``cursor``. A record's bookmark holds the cursor
  its page was asked with (the page's last record: the page's own ``after_cursor``), so a
  resumed read repeats at most one page. A cursor the API no longer takes (a 400/422) falls back
  to the watermark's second. Tickets are ordered by ``generated_timestamp``, which every change
  bumps (system updates too) and which is the replication key; ``updated_at`` moves only with
  ticket events [API.md §3.4]. Their metrics come side-loaded (``include=metric_sets``) and are
  emitted inside the ticket as ``metric_set``: one export call serves both [API.md §3.6].
- **Organizations: the time-based export** (``/incremental/organizations``, the only kind it
  has) [API.md §3.2]. Pages run from ``start_time`` to the page's ``end_time`` (the next
  ``start_time``); items sharing the boundary second come again on the next page and are skipped
  within a read. Resuming at the watermark's second repeats that second only. A page whose
  ``end_time`` does not move past its start is an error naming the call, not a loop.
- **Satisfaction ratings**: the ``/satisfaction_ratings`` list since the watermark's second (a
  cursor-paginated list; ratings have no export). Its order is not documented, so records carry
  the starting bookmark and the last one the newest ``updated_at`` seen.
- **The one-minute window**: exports leave out what changed in the last minute and refuse a
  ``start_time`` less than a minute old [API.md §3.1]; a first read starting that recent asks
  from just over a minute ago instead (nothing is lost: what is left out comes next run).
- **Deletes**: a deleted ticket stays in the export with ``status: "deleted"`` and a deleted
  user comes with ``active: false`` [API.md §3.5]; both are emitted flagged deleted.

The export calls have their own budget of 10 a minute (the pacer keeps to it); a page holds up
to 1,000 items, so 100,000 tickets take 100 calls.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..base import FIELD_KINDS, Bookmark, Record, Resource, saved_types
from ..errors import FatalError
from ..paging import Progress
from ..readahead import read_ahead
from ..timefmt import canonical_iso, iso_to_ms, ms_to_iso
from .client import ExportPage, ZendeskClient

log = logging.getLogger(__name__)

#: What an export leaves out and refuses: the last minute [API.md §3.1].
EXCLUSION_S = 60

_KINDS = FIELD_KINDS
_TS = "timestamp"
#: The objects' fields [API.md §5]. Ids are integers, as Zendesk sends them; timestamps ISO.
BASE_FIELDS: dict[str, dict[str, str]] = {
    "organizations": {
        "id": "integer", "url": "string", "name": "string", "external_id": "string",
        "domain_names": "array", "details": "string", "notes": "string", "group_id": "integer",
        "shared_tickets": "boolean", "shared_comments": "boolean", "tags": "array",
        "organization_fields": "object", "created_at": _TS, "updated_at": _TS,
        "deleted_at": _TS,
    },
    "users": {
        "id": "integer", "url": "string", "name": "string", "email": "string",
        "role": "string", "role_type": "integer", "organization_id": "integer",
        "phone": "string", "active": "boolean", "suspended": "boolean", "verified": "boolean",
        "external_id": "string", "user_fields": "object", "created_at": _TS,
        "updated_at": _TS, "last_login_at": _TS, "time_zone": "string",
        "iana_time_zone": "string", "locale": "string", "tags": "array", "alias": "string",
        "details": "string", "notes": "string", "permanently_deleted": "boolean",
    },
    "tickets": {
        "id": "integer", "url": "string", "external_id": "string", "via": "object",
        "created_at": _TS, "updated_at": _TS, "generated_timestamp": _TS, "type": "string",
        "subject": "string", "description": "string", "priority": "string",
        "status": "string", "requester_id": "integer", "submitter_id": "integer",
        "assignee_id": "integer", "organization_id": "integer", "group_id": "integer",
        "tags": "array", "custom_fields": "array", "satisfaction_rating": "object",
        "due_at": _TS, "brand_id": "integer", "ticket_form_id": "integer",
        "is_public": "boolean", "has_incidents": "boolean", "problem_id": "integer",
        "metric_set": "object",
    },
    "satisfaction_ratings": {
        "id": "integer", "url": "string", "ticket_id": "integer", "requester_id": "integer",
        "assignee_id": "integer", "group_id": "integer", "score": "string",
        "comment": "string", "reason": "string", "reason_id": "integer", "created_at": _TS,
        "updated_at": _TS,
    },
}  # fmt: skip

#: PII marks (``x-pii``), chosen as for the other CRMs: what identifies or describes a person,
#: and free text a person typed. Organization names and domains are business data. A dotted
#: name marks a part of an object field: a ticket's ``via.source.from`` and ``via.source.to``
#: hold the sender's and recipient's address, name or phone (by channel) [API.md §5.3], and its
#: ``satisfaction_rating.comment`` what the requester wrote; each is encrypted whole.
PII_FIELDS: dict[str, dict[str, str]] = {
    "organizations": {"details": "free_text", "notes": "free_text"},
    "users": {
        "name": "name", "email": "email", "phone": "phone", "alias": "name",
        "details": "free_text", "notes": "free_text",
    },
    "tickets": {
        "subject": "free_text", "description": "free_text", "via.source.from": "free_text",
        "via.source.to": "free_text", "satisfaction_rating.comment": "free_text",
    },
    "satisfaction_ratings": {"comment": "free_text"},
}  # fmt: skip

#: Custom field ``type`` -> our kind [API.md §6.1]. Dates come as date-time texts.
FIELD_TYPES = {
    "text": "string", "textarea": "string", "regexp": "string", "dropdown": "string",
    "lookup": "string", "checkbox": "boolean", "integer": "integer", "decimal": "number",
    "date": "string", "multiselect": "array",
}  # fmt: skip
#: The custom fields of each object (``organization_fields`` on organizations...).
CUSTOM = {"organizations": "organization_fields", "users": "user_fields"}


def convert(value: Any, kind: str) -> Any:
    """One value as its schema kind (None when it does not fit, with a warning)."""
    if value is None:
        return None
    try:
        if kind == _TS:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return ms_to_iso(int(value) * 1000)  # generated_timestamp: unix seconds
            return canonical_iso(str(value))
        if kind == "integer" and not isinstance(value, bool):
            return int(value)
        if kind == "number" and not isinstance(value, bool):
            return float(value)
        if kind == "string":
            return value if isinstance(value, str) else str(value)
        if kind == "boolean":
            return value if isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        log.warning("zendesk: a %s value did not fit; emitted as null", kind)
        return None
    return value


def _stamp(raw: dict[str, Any], field: str) -> int:
    """Epoch ms of a record's replication value (0 when it has none)."""
    value = raw.get(field)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) * 1000
    if isinstance(value, str) and value:
        try:
            return iso_to_ms(value)
        except ValueError:
            return 0
    return 0


class _Typed:
    """Schema and record building shared by every Zendesk resource."""

    obj = ""
    primary_key: tuple[str, ...] = ("id",)
    replication_key: str | None = "updated_at"

    def __init__(self, client: ZendeskClient) -> None:
        self.client = client
        self.name = f"zendesk_{self.obj}"
        self._custom: dict[str, str] | None = None

    def custom_types(self) -> dict[str, str]:
        """Custom field key -> kind, from the active field definitions (read once)."""
        if self._custom is None:
            self._custom = {}
            if self.obj == "organizations":
                fields = self.client.organization_fields()
            elif self.obj == "users":
                fields = self.client.user_fields()
            else:
                fields = []
            for f in fields:
                if f.get("key") and f.get("active", True):
                    self._custom[str(f["key"])] = FIELD_TYPES.get(str(f.get("type")), "string")
        return self._custom

    def catalog_types(self) -> dict[str, str] | None:
        """``{custom field key: kind}`` for the catalog (base.CatalogTyped); None for objects
        without custom fields (no API call)."""
        return dict(self.custom_types()) if self.obj in CUSTOM else None

    def use_catalog_types(self, saved: Any) -> bool:
        types = saved_types(saved, _KINDS) if self.obj in CUSTOM else None
        if types is None:
            return False
        self._custom = types
        return True

    def schema(self) -> dict[str, Any]:
        pii = PII_FIELDS.get(self.obj, {})
        props: dict[str, Any] = {}
        for field, kind in BASE_FIELDS[self.obj].items():
            props[field] = copy.deepcopy(_KINDS[kind])
            if field in pii:
                props[field]["x-pii"] = pii[field]
        for path, mark in pii.items():  # a part of an object field
            head, *inner = path.split(".")
            if not inner:
                continue
            node = props[head]
            for name in inner[:-1]:
                node = node.setdefault("properties", {}).setdefault(
                    name, {"type": ["object", "null"]}
                )
            node.setdefault("properties", {})[inner[-1]] = {"x-pii": mark}
        props["id"] = {"type": "integer"}
        if self.obj in CUSTOM:
            props[CUSTOM[self.obj]] = {
                "type": ["object", "null"],
                "properties": {k: dict(_KINDS[v]) for k, v in sorted(self.custom_types().items())},
            }
        return {"type": "object", "properties": props, "required": ["id"]}

    def _record(self, raw: dict[str, Any], modified: int, deleted: bool) -> Record:
        data = {
            field: convert(raw.get(field), kind)
            for field, kind in BASE_FIELDS[self.obj].items()
            if field in raw
        }
        data["id"] = int(raw["id"])
        if self.obj in CUSTOM:
            custom = raw.get(CUSTOM[self.obj]) or {}
            data[CUSTOM[self.obj]] = {
                k: convert(custom.get(k), v) for k, v in self.custom_types().items() if k in custom
            }
        return Record(str(raw["id"]), modified, data, deleted=deleted)

    def _start(self, bookmark: Bookmark, start_date: int | None, now: float) -> int:
        """The first ``start_time``: the watermark's second (re-read: ties are kept), else
        ``start_date``, never less than a minute and a second ago [API.md §3.1]."""
        since = bookmark.watermark if bookmark.watermark is not None else start_date or 0
        return min(since // 1000, int(now) - EXCLUSION_S - 1)


class CursorExport(_Typed):
    """Users or tickets through their cursor export (see the module doc)."""

    def __init__(
        self,
        client: ZendeskClient,
        obj: str,
        *,
        start_date: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if obj not in ("users", "tickets"):
            raise ValueError(f"{obj!r} has no cursor export; expected users or tickets")
        self.obj = obj
        super().__init__(client)
        self.replication_key = "generated_timestamp" if obj == "tickets" else "updated_at"
        self.start_date = start_date
        self._clock = clock
        self._include = "metric_sets" if obj == "tickets" else None

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        self.custom_types()  # discovered before paging: one call per read
        asked = bookmark.cursor  # the cursor the current page was asked with
        start = self._start(bookmark, self.start_date, self._clock())

        def first() -> ExportPage:
            nonlocal asked
            if asked is not None:
                try:
                    return self._page(asked, None)
                except FatalError as err:
                    if err.status not in (400, 422):
                        raise
                    log.warning(
                        "zendesk %s: the saved cursor was refused; reading from the watermark",
                        self.obj,
                    )
                    asked = None
            return self._page(None, start)

        new = Progress("zendesk", f"GET /incremental/{self.obj}/cursor")

        def following(page: ExportPage) -> Callable[[], ExportPage] | None:
            if page.end_of_stream or not page.after_cursor:
                return None
            cursor = new(page.after_cursor)
            return lambda: self._page(cursor, None)

        for page in read_ahead(first, following):
            metrics = {m.get("ticket_id"): m for m in (page.side or {}).get("metric_sets", [])}
            after = page.after_cursor or asked
            for n, raw in enumerate(page.items):
                rec = self._build(raw, metrics)
                cursor = after if n == len(page.items) - 1 else asked
                yield rec, Bookmark(rec.modified, None, cursor)
            asked = after

    def _page(self, cursor: str | None, start: int | None) -> ExportPage:
        if cursor is not None:
            return self.client.cursor_export(self.obj, cursor=cursor, include=self._include)
        return self.client.cursor_export(self.obj, start_time=start, include=self._include)

    def _build(self, raw: dict[str, Any], metrics: dict[Any, dict[str, Any]]) -> Record:
        if self.obj == "tickets":
            raw = {**raw, "metric_set": metrics.get(raw.get("id"))}
            deleted = raw.get("status") == "deleted"
            return self._record(raw, _stamp(raw, "generated_timestamp"), deleted)
        return self._record(raw, _stamp(raw, "updated_at"), raw.get("active") is False)


class OrganizationsExport(_Typed):
    """Organizations through the time-based export (see the module doc)."""

    obj = "organizations"

    def __init__(
        self,
        client: ZendeskClient,
        *,
        start_date: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client)
        self.start_date = start_date
        self._clock = clock

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        self.custom_types()
        start = self._start(bookmark, self.start_date, self._clock())
        first = lambda: self.client.time_export(self.obj, start_time=start)  # noqa: E731
        starts = {"page": start}

        def following(page: ExportPage) -> Callable[[], ExportPage] | None:
            if page.end_of_stream or page.next_url is None:
                return None
            if page.end_time is None or page.end_time <= starts["page"]:
                raise FatalError(
                    "the export's end_time did not move past its start_time: paging would loop",
                    vendor="zendesk",
                    route=f"GET /incremental/{self.obj}",
                )
            starts["page"] = page.end_time
            url = page.next_url
            return lambda: self.client.time_export(self.obj, next_url=url)

        boundary: dict[str, int] = {}  # the last page's boundary second, repeated on the next
        for page in read_ahead(first, following):
            repeated, boundary = boundary, {}
            for raw in page.items:
                rec = self._record(raw, _stamp(raw, "updated_at"), bool(raw.get("deleted_at")))
                if repeated.get(rec.id) == rec.modified:
                    continue
                if page.end_time is not None and rec.modified // 1000 >= page.end_time:
                    boundary[rec.id] = rec.modified
                yield rec, Bookmark(rec.modified, None)


class SatisfactionRatings(_Typed):
    """Satisfaction ratings since the watermark's second (see the module doc)."""

    obj = "satisfaction_ratings"

    def __init__(self, client: ZendeskClient, *, start_date: int | None = None) -> None:
        super().__init__(client)
        self.start_date = start_date

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        since = bookmark.watermark if bookmark.watermark is not None else self.start_date or 0
        newest = since
        held: Record | None = None
        for raw in self.client.list_all("/satisfaction_ratings", {"start_time": since // 1000}):
            rec = self._record(raw, _stamp(raw, "updated_at"), False)
            if rec.modified < since:
                continue
            newest = max(newest, rec.modified)
            if held is not None:
                yield held, bookmark
            held = rec
        if held is not None:
            yield held, Bookmark(newest, None)


class ZendeskConnector:
    """The Zendesk connector: organizations, users, tickets and satisfaction ratings."""

    vendor = "zendesk"

    def __init__(
        self,
        client: ZendeskClient,
        *,
        start_date: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.start_date = start_date
        self.clock = clock

    def resources(self) -> list[Resource]:
        start, clock = self.start_date, self.clock
        return [
            OrganizationsExport(self.client, start_date=start, clock=clock),
            CursorExport(self.client, "users", start_date=start, clock=clock),
            CursorExport(self.client, "tickets", start_date=start, clock=clock),
            SatisfactionRatings(self.client, start_date=start),
        ]

    def close(self) -> None:
        self.client.close()
