"""Intercom resources: contacts and conversations read incrementally through search, companies
through the scroll API, admins and tags as full tables. No Singer here; tap-crm adapts these.

**Contacts and conversations** (:class:`SearchResource`). Search matches timestamp fields by
*calendar day*: ``updated_at > T`` matches from the start of the day after T's day, so it misses
every change made later on T's own day [API.md §3.4]. The query is therefore
``updated_at > (start of W's UTC day - 1 day)``, which matches from the start of W's day, sorted
``updated_at`` ascending (the sort uses the full value), 150 per page with the cursor in the
*body* (``pagination.starting_after``; in the query string it is ignored and page 1 comes back,
which is also why python-intercom's search pager loops [API.md §3.9]). Records are then filtered
client-side on ``updated_at * 1000 >= W``. Each record is emitted with ``Bookmark(updated_at ms,
None)``: search cannot order ties inside one second by id, so ``last_id`` stays None and a
resumed read re-reads the watermark's second (at least once, never lost). Records updated
``settle_ms`` or less before the read started are left for the next run, as new records take a
while to be searchable [API.md §3.4].

Archived contacts are still listed and searchable with ``archived: true`` [API.md §3.5]; they
are emitted with ``deleted=True`` (base.py: "archived / IsDeleted / merged away: emitted with a
flag") and the ``archived`` field kept, so an unarchive (a later update) emits them again with
``deleted=False``. Deleted and merged contacts disappear from search: Intercom has no "deleted
since" feed [API.md §3.5], so they are not reported.

**Companies** (:class:`CompaniesResource`) have no search; ``GET /companies/scroll`` reads all of
them, and those with ``updated_at * 1000 >= W`` are emitted. See the class for the scroll rules.

Timestamps (unix seconds on the wire) are emitted as ISO-8601 date-time strings; ``modified``
stays epoch ms. Custom attributes come typed from ``GET /data_attributes?model=…``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..base import FIELD_KINDS, Bookmark, Record, Resource, saved_types
from ..errors import FatalError, NetworkError, NotFound, ServerError
from ..http import RetryPolicy
from ..paging import Progress
from ..readahead import read_ahead
from .client import PER_PAGE_MAX, IntercomClient, ScrollPage

log = logging.getLogger(__name__)

DAY_S = 86_400

#: "timestamp" is unix seconds on the wire, a date-time string out.
_KINDS = FIELD_KINDS

#: Intercom data attribute ``data_type`` -> our field kind [API.md §3.6]. Intercom reports
#: even its built-in timestamps as ``date`` (unix seconds) [API.md §3.6], so date and datetime
#: are both emitted as date-time strings; options are strings.
DATA_TYPES = {
    "string": "string",
    "options": "string",
    "integer": "integer",
    "float": "number",
    "boolean": "boolean",
    "date": "timestamp",
    "datetime": "timestamp",
}

_TS = "timestamp"
#: Fixed base fields per object, from the 2.14 spec's ``contact``, ``company``,
#: ``conversation``, ``admin`` and ``tag`` schemas (ids are strings, timestamps unix seconds).
BASE_FIELDS: dict[str, dict[str, str]] = {
    "contacts": {
        "id": "string", "type": "string", "workspace_id": "string", "external_id": "string",
        "role": "string", "email": "string", "email_domain": "string", "phone": "string",
        "name": "string", "owner_id": "integer", "has_hard_bounced": "boolean",
        "marked_email_as_spam": "boolean", "unsubscribed_from_emails": "boolean",
        "created_at": _TS, "updated_at": _TS, "signed_up_at": _TS, "last_seen_at": _TS,
        "last_replied_at": _TS, "last_contacted_at": _TS, "last_email_opened_at": _TS,
        "last_email_clicked_at": _TS, "language_override": "string", "browser": "string",
        "browser_version": "string", "browser_language": "string", "os": "string",
        "avatar": "object", "tags": "object", "notes": "object", "companies": "object",
        "location": "object", "social_profiles": "object", "archived": "boolean",
    },
    "companies": {
        "id": "string", "type": "string", "company_id": "string", "app_id": "string",
        "name": "string", "remote_created_at": _TS, "created_at": _TS, "updated_at": _TS,
        "last_request_at": _TS, "monthly_spend": "number", "session_count": "integer",
        "user_count": "integer", "size": "integer", "website": "string", "industry": "string",
        "plan": "object", "tags": "object", "segments": "object",
    },
    "conversations": {
        "id": "string", "type": "string", "title": "string", "created_at": _TS,
        "updated_at": _TS, "waiting_since": _TS, "snoozed_until": _TS, "open": "boolean",
        "state": "string", "read": "boolean", "priority": "string",
        "admin_assignee_id": "integer", "team_assignee_id": "integer", "tags": "object",
        "conversation_rating": "object", "source": "object", "contacts": "object",
        "teammates": "object", "first_contact_reply": "object", "statistics": "object",
        "linked_objects": "object", "ai_agent_participated": "boolean",
    },
    "admins": {
        "id": "string", "type": "string", "name": "string", "email": "string",
        "job_title": "string", "away_mode_enabled": "boolean", "away_mode_reassign": "boolean",
        "has_inbox_seat": "boolean", "team_ids": "array", "avatar": "object",
    },
    "tags": {"id": "string", "type": "string", "name": "string", "applied_at": _TS,
             "applied_by": "object"},
}  # fmt: skip

#: Data attribute model per object with custom attributes [API.md §3.6].
MODEL = {"contacts": "contact", "companies": "company", "conversations": "conversation"}

#: PII marks (``x-pii``), chosen as in the HubSpot connector: what identifies or describes a
#: person, and free text a person typed. Contact email, name, phone and location (city and region
#: are address parts; country alone is kept); conversation title and the source's subject, body
#: and author; admin name and email. Companies: none (the 2.14 company has no phone or address;
#: names and websites are business data needed for matching).
PII_FIELDS: dict[str, dict[str, str]] = {
    "contacts": {"email": "email", "name": "name", "phone": "phone"},
    "conversations": {"title": "free_text"},
    "admins": {"name": "name", "email": "email"},
}
_NESTED_PII: dict[str, dict[str, dict[str, Any]]] = {
    "contacts": {
        "location": {
            "type": ["object", "null"],
            "properties": {
                "type": {"type": ["string", "null"]},
                "country": {"type": ["string", "null"]},
                "region": {"type": ["string", "null"], "x-pii": "address"},
                "city": {"type": ["string", "null"], "x-pii": "address"},
            },
        },
    },
    "conversations": {
        "source": {
            "type": ["object", "null"],
            "properties": {
                "subject": {"type": ["string", "null"], "x-pii": "free_text"},
                "body": {"type": ["string", "null"], "x-pii": "free_text"},
                "author": {
                    "type": ["object", "null"],
                    "properties": {
                        "name": {"type": ["string", "null"], "x-pii": "name"},
                        "email": {"type": ["string", "null"], "x-pii": "email"},
                    },
                },
            },
        },
    },
}


_EPOCH = dt.datetime(1970, 1, 1)


def ts_to_iso(seconds: int | float) -> str:
    """ISO-8601 UTC (``2026-01-31T12:00:00Z``) of unix seconds, a fraction floored. (Integer
    timedelta arithmetic: about 4x ``fromtimestamp`` + ``strftime``, on every timestamp.)"""
    return (_EPOCH + dt.timedelta(seconds=math.floor(seconds))).isoformat() + "Z"


def convert(value: Any, kind: str) -> Any:
    """One wire value as its schema kind; a value that does not fit is ``None``, logged by kind
    only (values may be personal data)."""
    if value is None or (value == "" and kind != "string"):
        return None
    try:
        if kind == "string":
            return str(value)
        if kind == "integer":
            if isinstance(value, bool):
                raise ValueError("a boolean is not an integer")
            return int(value)
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not a finite number")
            return int(value) if isinstance(value, int) else number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0"):
                return str(value).lower() in ("true", "1")
            raise ValueError("not a boolean")
        if kind == _TS:
            return ts_to_iso(float(value))
        if kind == "object":
            if not isinstance(value, dict):
                raise ValueError("not an object")
            return value
        if kind == "array":
            if not isinstance(value, list):
                raise ValueError("not an array")
            return value
    except (ValueError, TypeError, OverflowError, OSError):
        log.warning("intercom: a %s value did not fit; emitted as null", kind)
        return None
    return value


class _Typed:
    """Schema and record building shared by every Intercom resource."""

    obj = ""
    name = ""
    primary_key: tuple[str, ...] = ("id",)

    def __init__(self, client: IntercomClient) -> None:
        self.client = client
        self._custom: dict[str, str] | None = None

    def custom_types(self) -> dict[str, str]:
        """Custom attribute name -> kind, from the live data attributes (read once)."""
        if self._custom is None:
            model = MODEL.get(self.obj)
            self._custom = {}
            if model is not None:
                for attr in self.client.data_attributes(model):
                    if not attr.get("custom") or attr.get("archived") or not attr.get("name"):
                        continue
                    kind = DATA_TYPES.get(str(attr.get("data_type")), "string")
                    self._custom[str(attr["name"])] = kind
        return self._custom

    def catalog_types(self) -> dict[str, str] | None:
        """``{custom attribute: kind}`` for the catalog (see base.CatalogTyped); None for
        objects without custom attributes (admins, tags: no API call)."""
        return dict(self.custom_types()) if self.obj in MODEL else None

    def use_catalog_types(self, saved: Any) -> bool:
        types = saved_types(saved, _KINDS) if self.obj in MODEL else None
        if types is None:
            return False
        self._custom = types
        return True

    def schema(self) -> dict[str, Any]:
        pii = PII_FIELDS.get(self.obj, {})
        nested = _NESTED_PII.get(self.obj, {})
        props: dict[str, Any] = {}
        for field, kind in BASE_FIELDS[self.obj].items():
            props[field] = dict(nested.get(field) or _KINDS[kind])
            if field in pii:
                props[field]["x-pii"] = pii[field]
        props["id"] = {"type": "string"}
        if self.obj in MODEL:
            props["custom_attributes"] = {
                "type": ["object", "null"],
                "properties": {n: dict(_KINDS[k]) for n, k in sorted(self.custom_types().items())},
            }
        return {"type": "object", "properties": props, "required": ["id"]}

    def _record(self, raw: dict[str, Any]) -> Record:
        data = {
            field: convert(raw.get(field), kind)
            for field, kind in BASE_FIELDS[self.obj].items()
            if field in raw
        }
        data["id"] = str(raw["id"])
        if self.obj in MODEL:
            custom = raw.get("custom_attributes") or {}
            data["custom_attributes"] = {
                n: convert(custom.get(n), k) for n, k in self.custom_types().items() if n in custom
            }
        return Record(data["id"], _modified(raw), data, deleted=bool(raw.get("archived", False)))


def _modified(raw: dict[str, Any]) -> int:
    """A raw record's ``updated_at`` (unix seconds) in epoch ms; 0 when it has none."""
    stamp = raw.get("updated_at")
    return int(stamp) * 1000 if isinstance(stamp, int | float) else 0


class SearchResource(_Typed):
    """Contacts or conversations, incrementally through search (see the module doc)."""

    replication_key: str | None = "updated_at"

    def __init__(
        self,
        client: IntercomClient,
        obj: str,
        *,
        start_date: int | None = None,
        settle_ms: int = 300_000,
        page_size: int = PER_PAGE_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if obj not in ("contacts", "conversations"):
            raise ValueError(f"{obj!r} is not searchable; expected contacts or conversations")
        super().__init__(client)
        self.obj = obj
        self.name = f"intercom_{obj}"
        self.start_date = start_date
        self.settle_ms = settle_ms
        self.page_size = page_size
        self._clock = clock

    @staticmethod
    def query_value(since_ms: int) -> int:
        """The ``updated_at >`` value that matches from the start of ``since``'s UTC day: the
        start of the day before, as ``>`` T matches from the day after T's [API.md §3.4]."""
        day = since_ms // 1000 // DAY_S * DAY_S
        return max(day - DAY_S, 0)

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        self.custom_types()  # discovered before paging: one call per read
        horizon = int(self._clock() * 1000) - self.settle_ms
        since = bookmark.watermark if bookmark.watermark is not None else self.start_date or 0
        query = {"field": "updated_at", "operator": ">", "value": self.query_value(since)}
        sort = {"field": "updated_at", "order": "ascending"}

        def fetch(cursor: str | None) -> Callable[[], Any]:
            return lambda: self.client.search_page(
                self.obj, query, starting_after=cursor, per_page=self.page_size, sort=sort
            )

        new = Progress("intercom", f"POST /{self.obj}/search")

        def following(page: Any) -> Callable[[], Any] | None:
            if page.starting_after is None or (
                page.results and _modified(page.results[-1]) > horizon
            ):
                return None  # the last page, or the read stops inside this one
            return fetch(new(page.starting_after))

        for page in read_ahead(fetch(None), following):
            for raw in page.results:
                rec = self._record(raw)
                if rec.modified < since:
                    continue  # earlier on the watermark's day: already emitted
                if rec.modified > horizon:
                    return  # ascending: the rest is newer still; the next run reads it
                yield rec, Bookmark(rec.modified, None)


class CompaniesResource(_Typed):
    """Every company through ``GET /companies/scroll``, emitting those updated at or after the
    watermark (companies have no search [API.md §3.2]).

    - **One open scroll per app**: opening one while another is open gives 400 ``scroll_exists``
      (e.g. a killed run's scroll); the read waits ``scroll_wait`` seconds and retries until the
      old one expires (1 minute idle), at most ``scroll_wait_max`` seconds in all.
    - **Expired param** (404 after 1 minute idle, e.g. a slow consumer): the scroll restarts.
    - **A failed page** (5xx, dropped connection, truncated body) may have moved the scroll on,
      so retrying the same param could skip a page: the page is retried but the pass is marked
      *suspect*, and after it a new pass reads everything again. Records are deduplicated by id
      within a read (one set of ids in memory). After ``max_passes`` suspect passes the
      watermark is not advanced, so the next run reads the same range again.
    - Scroll order is not by modification, so records carry the starting bookmark; the last one
      carries the new watermark: ``min(newest emitted, read start - settle_ms)`` (a company
      edited during the scroll behind its position is read next run).
    - Archived (deleted) companies leave the scroll and are not reported.
    """

    obj = "companies"
    name = "intercom_companies"
    replication_key: str | None = "updated_at"

    def __init__(
        self,
        client: IntercomClient,
        *,
        start_date: int | None = None,
        settle_ms: int = 300_000,
        scroll_wait: float = 5.0,
        scroll_wait_max: float = 90.0,
        page_retries: int = RetryPolicy().max_tries - 1,  # as the HTTP layer's other calls
        max_passes: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client)
        self.start_date = start_date
        self.settle_ms = settle_ms
        self.scroll_wait = scroll_wait
        self.scroll_wait_max = scroll_wait_max
        self.page_retries = page_retries
        self.max_passes = max_passes
        self._clock = clock

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        self.custom_types()
        started = int(self._clock() * 1000) - self.settle_ms
        since = bookmark.watermark if bookmark.watermark is not None else self.start_date or 0
        seen: set[str] = set()
        newest = since
        held: Record | None = None
        clean = False
        for number in range(1, self.max_passes + 1):
            state = {"suspect": False}
            for raw in self._pass(state):
                rec = self._record(raw)
                if rec.id in seen or rec.modified < since:
                    continue
                seen.add(rec.id)
                newest = max(newest, rec.modified)
                if held is not None:
                    yield held, bookmark
                held = rec
            if not state["suspect"]:
                clean = True
                break
            log.warning("intercom companies: scroll pass %d may have skipped a page", number)
        final = Bookmark(max(since, min(newest, started)), None) if clean else bookmark
        if not clean:
            log.warning("intercom companies: no clean scroll pass; watermark kept")
        if held is not None:
            yield held, final

    def _pass(self, state: dict[str, bool]) -> Iterator[dict[str, Any]]:
        page = self._open()
        while page.results:
            yield from page.results
            if page.scroll_param is None:
                return
            nxt = self._next(page.scroll_param, state)
            if nxt is None:
                return
            page = nxt

    def _open(self) -> ScrollPage:
        waited = 0.0
        failures = 0
        while True:
            try:
                return self.client.scroll_page(None)
            except FatalError as err:
                if err.status != 400 or err.code != "scroll_exists":
                    raise
                if waited >= self.scroll_wait_max:
                    raise
                log.info("intercom companies: another scroll is open; waiting for it to expire")
            except (ServerError, NetworkError):
                failures += 1
                if failures > self.page_retries:
                    raise
            self.client.sleep(self.scroll_wait)
            waited += self.scroll_wait

    def _next(self, param: str, state: dict[str, bool]) -> ScrollPage | None:
        """The next page, or None when the scroll expired (the pass ends, suspect)."""
        failures = 0
        while True:
            try:
                return self.client.scroll_page(param)
            except NotFound:
                log.info("intercom companies: scroll expired; restarting it")
                state["suspect"] = True
                return None
            except (ServerError, NetworkError):
                state["suspect"] = True
                failures += 1
                if failures > self.page_retries:
                    raise
                self.client.sleep(min(2.0**failures, 30.0))


class FullTableResource(_Typed):
    """``/admins`` or ``/tags``: small unpaginated lists read in full each run."""

    replication_key: str | None = None

    def __init__(self, client: IntercomClient, obj: str) -> None:
        if obj not in ("admins", "tags"):
            raise ValueError(f"{obj!r} is not a full-table resource; expected admins or tags")
        super().__init__(client)
        self.obj = obj
        self.name = f"intercom_{obj}"

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        rows = self.client.admins() if self.obj == "admins" else self.client.tags()
        for raw in rows:
            rec = self._record(raw)
            yield Record(rec.id, 0, rec.data), bookmark


class IntercomConnector:
    """The Intercom connector: contacts, companies, conversations, admins and tags."""

    vendor = "intercom"

    def __init__(self, client: IntercomClient, **options: Any) -> None:
        self.client = client
        self._options = options

    def resources(self) -> list[Resource]:
        opts = {k: v for k, v in self._options.items() if k in ("start_date", "settle_ms")}
        return [
            SearchResource(self.client, "contacts", **opts),
            CompaniesResource(self.client, **opts),
            SearchResource(self.client, "conversations", **opts),
            FullTableResource(self.client, "admins"),
            FullTableResource(self.client, "tags"),
        ]

    def close(self) -> None:
        self.client.close()
