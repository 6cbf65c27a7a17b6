"""HubSpot resources: CRM objects read incrementally through search, owners and associations
read as full tables. No Singer here; tap-crm adapts these to streams.

Object reads (:class:`HubSpotResource`), in the order a run does them:

1. **Resume inside a millisecond.** A bookmark with ``last_id`` means every record at
   ``watermark`` with an id ``<= last_id`` was emitted: read the rest of that millisecond with the
   *id-keyset pass* (``modified EQ W AND hs_object_id GT last_id``, sorted by ``hs_object_id``
   ascending, each page restarting after the last id seen), then continue at ``modified GT W``.
2. **Keyset pages by modification.** Search sorted ascending on the modified property with
   ``GTE`` (or ``GT``) the lower bound and ``LTE`` a settle horizon, 200 per page, always at
   ``after=0``. HubSpot documents no order among ties on one millisecond [API.md §1.4], so a
   full page's last millisecond may be cut short: those trailing records are held back and the
   next page restarts at ``GTE`` that millisecond. Everything before it is complete and is emitted
   grouped by millisecond, in id order, each with ``Bookmark(ms, id)``. Offsets are never used,
   so the 10,000-result cap [API.md §1.4] is never reached, and a record edited mid-read
   cannot shift a page boundary and be skipped (it moves past the horizon; the next run reads it).
3. **Tie blocks.** When a whole page shares one millisecond (more ties than a page holds, e.g.
   a bulk import of 10,300 contacts on one ms), no keyset by time can progress: that millisecond
   is read with the id-keyset pass, then the read continues at ``GT`` it. Never loops (each query
   starts strictly after what the previous one returned), never skips. That holds only while the
   server applies the filters: a page holding a record below its query's lower bound (a time
   before ``GTE``/at ``GT``, an id at or below ``hs_object_id GT``) would let the next query
   start where this one did, so it stops the read with an error naming the call instead of
   re-reading without progress.
4. **Archived records** (search leaves them out [API.md §1.4, §1.6]): the ``archived=true``
   list, once per run and *before* the search passes above, emitted with ``deleted=True``
   when the record says ``archived: true`` (one that does not is live, and left to the
   search); only those archived at or after the run's starting watermark (all on a first
   run). They carry the
   starting bookmark unchanged. Read first, because their lower bound is the starting watermark:
   read last, a run stopped mid-search (kill -9, quota guard) would save a watermark past
   archived records it never emitted, and the resumed run's archived pass would skip them.

Because every emitted record carries ``(modified, id)`` and its millisecond is known complete
before it is emitted, ``last_id`` is always set and a resumed read repeats no live record (the
price: one extra search call per resume, for the rest of the bookmark's millisecond). Archived
records come first with the starting bookmark, so bookmarks never go back within a run; a resumed
run repeats those archived at or after its starting watermark.

**First run: a list backfill.** With no bookmark and no ``start_date``, every live record is
read through the list endpoint (``GET /crm/v3/objects/{t}``, 100 per page, id order) after the
archived pass: list calls share the burst window (100-190 per 10 s, so up to 1,900 records/s)
where search is held to 5 requests/s (1,000 records/s) [API.md §1.8], so a first sync takes
about half the time and leaves the search budget alone. The list is ordered by id, not by
modification, so its records carry ``Bookmark(cursor="list:T0:<after>")``: T0 is the settle
horizon when the backfill began and ``<after>`` the page the record came from, so a resumed run
re-reads at most that page and goes on listing (the archived pass is not repeated). The last
record listed carries ``Bookmark(T0)``: the next run searches from T0 (``GTE``), which catches
every record edited, created or archived while the list was read (a listed copy may be older than
its edit; the search reads it again). With a ``start_date`` (the list cannot filter by time) or
a property list too long for a URL, the first run is a search from ``start_date`` instead, the
same path as an incremental read.

Settle horizon: search shows new writes only after an index lag of a few seconds
[API.md §1.4], so a read only takes records modified ``settle_ms`` or more before it
started; otherwise a late-indexed record behind the watermark would be skipped for good.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..base import Bookmark, Record, Resource, saved_types
from ..errors import FatalError
from ..paging import Progress
from ..readahead import read_ahead
from ..timefmt import canonical_iso, iso_to_ms, ms_to_iso
from .client import SEARCH_MAX, HubSpotClient

LIST_ROUTE = "GET /crm/v3/objects/{t}"

log = logging.getLogger(__name__)

OBJECTS = ("companies", "contacts", "deals", "tickets", "feedback_submissions")

#: Fields marked PII (``x-pii``), per object. Chosen as the fields that identify or describe a
#: person or hold free text a person typed (which may contain anything): emails, names, phones,
#: postal address parts, and free-text bodies. Company names, domains and job titles are not
#: marked (business data, needed for matching); city alone is coarse but is part of an address.
PII_FIELDS: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "email",
        "firstname": "name",
        "lastname": "name",
        "phone": "phone",
        "mobilephone": "phone",
        "address": "address",
        "city": "address",
        "zip": "address",
        "ip_city": "address",
        "work_email": "email",
        "fax": "phone",
        "date_of_birth": "free_text",
        "message": "free_text",
    },
    "companies": {"phone": "phone", "address": "address", "address2": "address"},
    "deals": {"description": "free_text"},
    "tickets": {"content": "free_text", "subject": "free_text"},
    "feedback_submissions": {"hs_content": "free_text", "hs_contact_email_address": "email"},
    "owners": {"email": "email", "firstName": "name", "lastName": "name"},
}

_NULL_STRING = {"type": ["string", "null"]}
_DATETIME = {"type": ["string", "null"], "format": "date-time"}


def modified_property(obj: str) -> str:
    """Contacts call it ``lastmodifieddate``, other objects ``hs_lastmodifieddate``
    [API.md §1.2]."""
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


def json_type(hubspot_type: str) -> dict[str, Any]:
    """The JSON Schema of a property by its HubSpot ``type`` [API.md §1.7]. Values are sent as
    strings; :func:`convert` turns them into these types. Unknown types stay strings."""
    if hubspot_type == "number":
        return {"type": ["number", "null"]}
    if hubspot_type == "bool":
        return {"type": ["boolean", "null"]}
    if hubspot_type == "date":
        return {"type": ["string", "null"], "format": "date"}
    if hubspot_type == "datetime":
        return dict(_DATETIME)
    return dict(_NULL_STRING)  # enumeration, string, phone_number, and anything new


def convert(value: Any, hubspot_type: str) -> Any:
    """One property value (always a string on the wire [API.md §1.2]) as its schema type.
    Empty strings are no value. A value that does not parse stays ``None`` and is logged by
    property type only (values may be personal data)."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        if hubspot_type == "number":
            try:
                return int(text)  # exact, also for 16+ digit ids a float would round
            except ValueError:
                number = float(text)
            if not math.isfinite(number):
                raise ValueError("not a finite number")  # JSON has no NaN or Infinity
            return number
        if hubspot_type == "bool":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            raise ValueError("not a boolean")
        if hubspot_type == "date":
            # Older API versions sent date values as epoch-ms strings [API.md, Property values].
            return ms_to_iso(int(text))[:10] if text.isdigit() else text[:10]
        if hubspot_type == "datetime":
            return canonical_iso(text)
    except (ValueError, OverflowError):
        log.warning("hubspot: a %s value did not parse; emitted as null", hubspot_type)
        return None
    return text


BACKFILL = "list:"
#: The longest comma-joined property list sent in a list URL (a query string of ~6 KB, well
#: under common 8 KB request-line limits); a portal with more properties backfills by search.
LIST_PROPERTIES_MAX_CHARS = 6000


def _backfill_position(cursor: str | None) -> tuple[int, str | None] | None:
    """``(T0, after)`` of a list backfill's cursor, or None for any other cursor."""
    if not cursor or not cursor.startswith(BACKFILL):
        return None
    t0, _, after = cursor[len(BACKFILL) :].partition(":")
    if not t0.lstrip("-").isdigit():
        return None
    return int(t0), after or None


class HubSpotResource:
    """One HubSpot CRM object type (companies, contacts, deals, tickets, feedback_submissions)."""

    primary_key: tuple[str, ...] = ("id",)

    def __init__(
        self,
        client: HubSpotClient,
        obj: str,
        *,
        start_date: int | None = None,
        settle_ms: int = 10_000,
        archived: bool = True,
        page_size: int = SEARCH_MAX,
        list_backfill: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if obj not in OBJECTS:
            raise ValueError(
                f"unknown HubSpot object {obj!r}; expected one of {', '.join(OBJECTS)}"
            )
        self.client = client
        self.obj = obj
        self.name = f"hubspot_{obj}"
        self.modified_property = modified_property(obj)
        self.replication_key: str | None = self.modified_property
        self.start_date = start_date
        self.settle_ms = settle_ms
        self.archived = archived
        self.page_size = page_size
        self.list_backfill = list_backfill  # False: a first run searches (the module doc)
        self._clock = clock
        self._types: dict[str, str] | None = None

    # -- schema ----------------------------------------------------------------------------------

    def property_types(self) -> dict[str, str]:
        """Property name -> HubSpot type, from the properties API (read once per resource)."""
        if self._types is None:
            self._types = {
                str(p["name"]): str(p.get("type") or "string")
                for p in self.client.properties(self.obj)
                if p.get("name")
            }
        return self._types

    def catalog_types(self) -> dict[str, str]:
        """``{property: HubSpot type}``, for the catalog (see base.CatalogTyped)."""
        return dict(self.property_types())

    def use_catalog_types(self, saved: Any) -> bool:
        types = saved_types(saved)
        if types is None:
            return False
        self._types = types
        return True

    def schema(self) -> dict[str, Any]:
        pii = PII_FIELDS.get(self.obj, {})
        props: dict[str, Any] = {
            "id": {"type": "string"},
            "createdAt": dict(_DATETIME),
            "updatedAt": dict(_DATETIME),
            "archived": {"type": ["boolean", "null"]},
            "archivedAt": dict(_DATETIME),
        }
        for name, kind in sorted(self.property_types().items()):
            field = json_type(kind)
            if name in pii:
                field["x-pii"] = pii[name]
            props[name] = field
        return {
            "type": "object",
            "properties": props,
            "required": ["id"],
            "additionalProperties": False,
        }

    # -- read ------------------------------------------------------------------------------------

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        types = self.property_types()
        names = sorted(types)
        horizon = int(self._clock() * 1000) - self.settle_ms
        backfill = _backfill_position(bookmark.cursor)
        if backfill is not None:  # a backfill stopped mid-list: go on listing
            yield from self._backfill(*backfill, names, types)
            return
        since = bookmark.watermark if bookmark.watermark is not None else self.start_date
        if self.archived:  # first: see the module doc, point 4
            for rec in self.read_archived(since, names, types):
                yield rec, bookmark
        first = bookmark.watermark is None and not self.start_date and self.list_backfill
        if first and len(",".join(names)) <= LIST_PROPERTIES_MAX_CHARS:
            yield from self._backfill(horizon, None, names, types)
            return
        last = bookmark
        if bookmark.watermark is not None and bookmark.last_id is not None:
            for rec, last in self._ties(bookmark.watermark, bookmark.last_id, names, types):
                yield rec, last
            low, inclusive = bookmark.watermark, False
        else:
            low = bookmark.watermark if bookmark.watermark is not None else self.start_date or 0
            inclusive = True
        for rec, last in self._by_time(low, inclusive, horizon, names, types):
            yield rec, last

    def _backfill(
        self, t0: int, after: str | None, names: Sequence[str], types: dict[str, str]
    ) -> Iterator[tuple[Record, Bookmark]]:
        """Every live record through the list, from page ``after`` on (see the module doc)."""

        def fetch(after: str | None) -> Callable[[], Any]:
            return lambda: self.client.list_page(self.obj, after, properties=names)

        held: tuple[Record, Bookmark] | None = None  # the last one gets Bookmark(t0)
        cursor = after
        new = Progress("hubspot", LIST_ROUTE, after)
        for page in read_ahead(fetch(after), lambda p: fetch(new(p.after)) if p.after else None):
            mark = Bookmark(cursor=f"{BACKFILL}{t0}:{cursor or ''}")
            for raw in page.results:
                if held is not None:
                    yield held
                held = self._record(raw, types), mark
            cursor = page.after
        if held is not None:
            yield held[0], Bookmark(t0)

    def _search(self, filters: list[dict[str, Any]], sort: str, names: Sequence[str]) -> list[Any]:
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(names),
            "limit": self.page_size,
            "after": "0",  # keyset: every page is a new query [API.md §1.4]
        }
        return self.client.search_page(self.obj, body).results

    def _by_time(
        self,
        low: int,
        inclusive: bool,
        horizon: int,
        names: Sequence[str],
        types: dict[str, str],
    ) -> Iterator[tuple[Record, Bookmark]]:
        mod = self.modified_property
        full = self.page_size

        def query(low: int, inclusive: bool) -> Callable[[], list[Record]]:
            filters = [
                {"propertyName": mod, "operator": "GTE" if inclusive else "GT", "value": str(low)},
                {"propertyName": mod, "operator": "LTE", "value": str(horizon)},
            ]
            return lambda: [self._record(raw, types) for raw in self._search(filters, mod, names)]

        def following(page: list[Record]) -> Callable[[], list[Record]] | None:
            # The next query of a full page that does not sit on one millisecond (see below).
            if len(page) < full:
                return None
            edge = max(r.modified for r in page)
            return query(edge, True) if any(r.modified < edge for r in page) else None

        while low <= horizon:
            bound, strict = low, not inclusive
            for page in read_ahead(query(low, inclusive), following):
                self._check_progress(page, bound, strict, mod)
                if len(page) < full:  # the query's last page: every millisecond is whole
                    yield from self._emit(page)
                    return
                edge = max(r.modified for r in page)
                whole = [r for r in page if r.modified < edge]
                if not whole:
                    # A full page on one millisecond: more ties than a page, so read that ms by
                    # id, then go on after it with a new query.
                    log.info("hubspot %s: tie block at %d ms, reading it by id", self.obj, edge)
                    yield from self._ties(edge, None, names, types)
                    low, inclusive = edge, False
                    break
                # The page's last millisecond may continue on the next page: hold it back and
                # restart at GTE it (search returns ties in no documented order [API.md §1.4]);
                # ``following`` already asked for that page.
                yield from self._emit(whole)
                bound, strict = edge, False
            else:
                return

    def _ties(
        self, ms: int, after_id: str | None, names: Sequence[str], types: dict[str, str]
    ) -> Iterator[tuple[Record, Bookmark]]:
        """Every record modified at ``ms`` with an id above ``after_id``, in id order; each page
        a new query after the last id seen, so tie blocks of any size stay under the cap."""
        mod = self.modified_property
        full = self.page_size

        def query(after_id: str | None) -> Callable[[], tuple[int, list[Record]]]:
            filters: list[dict[str, Any]] = [
                {"propertyName": mod, "operator": "EQ", "value": str(ms)}
            ]
            if after_id is not None:
                filters.append(
                    {"propertyName": "hs_object_id", "operator": "GT", "value": after_id}
                )

            def fetch() -> tuple[int, list[Record]]:
                raws = self._search(filters, "hs_object_id", names)
                page = [self._record(raw, types) for raw in raws]
                return len(raws), sorted(page, key=lambda r: int(r.id))

            return fetch

        def following(got: tuple[int, list[Record]]) -> Callable[[], Any] | None:
            return query(got[1][-1].id) if got[0] >= full else None

        last = after_id
        for _, page in read_ahead(query(after_id), following):
            if last is not None and any(int(r.id) <= int(last) for r in page):
                raise self._no_progress(f"hs_object_id > {last}")
            last = page[-1].id if page else last
            for rec in page:
                if rec.modified == ms:  # edited since it was indexed: the next run reads it
                    yield rec, Bookmark(ms, rec.id)

    def _check_progress(self, page: list[Record], bound: int, strict: bool, prop: str) -> None:
        """Stop when a search page breaks its time filter (see the module doc, point 3). A
        record may be newer than the filter's bound (edited since indexed), never older."""
        if any(r.modified < bound or (strict and r.modified == bound) for r in page):
            raise self._no_progress(f"{prop} {'>' if strict else '>='} {bound}")

    def _no_progress(self, condition: str) -> FatalError:
        return FatalError(
            f"a search page holds {self.obj} outside its filter ({condition}): the server"
            " ignores the keyset filters, so the read stops rather than re-read the same"
            " records without progress",
            vendor="hubspot",
            method="POST",
            route="POST /crm/v3/objects/{t}/search",
        )

    @staticmethod
    def _emit(records: list[Record]) -> Iterator[tuple[Record, Bookmark]]:
        """Whole milliseconds, ascending, ids ascending within each: bookmark ``(ms, id)``."""
        for rec in sorted(records, key=lambda r: (r.modified, int(r.id))):
            yield rec, Bookmark(rec.modified, rec.id)

    def read_archived(
        self,
        since: int | None,
        names: Sequence[str] | None = None,
        types: dict[str, str] | None = None,
    ) -> Iterator[Record]:
        """Archived records (``archived=true`` returns only those [API.md §1.6]) archived at
        or after ``since`` (all when None), as ``deleted=True`` records."""
        types = types if types is not None else self.property_types()
        names = names if names is not None else sorted(types)

        def fetch(after: str | None) -> Callable[[], Any]:
            return lambda: self.client.list_page(self.obj, after, properties=names, archived=True)

        live = 0
        new = Progress("hubspot", LIST_ROUTE)
        for page in read_ahead(fetch(None), lambda p: fetch(new(p.after)) if p.after else None):
            for raw in page.results:
                if raw.get("archived") is not True:  # deleted only when the record says so
                    live += 1
                    continue
                rec = self._record(raw, types, deleted=True)
                if since is None or rec.modified >= since:
                    yield rec
        if live:
            log.warning(
                "hubspot %s: the archived=true list returned %d record(s) not marked archived;"
                " they are not emitted as deleted",
                self.obj,
                live,
            )

    def _record(self, raw: dict[str, Any], types: dict[str, str], deleted: bool = False) -> Record:
        props = raw.get("properties") or {}
        data: dict[str, Any] = {
            name: convert(props.get(name), kind) for name, kind in types.items() if name in props
        }
        for key in ("createdAt", "updatedAt", "archivedAt"):
            value = raw.get(key)
            data[key] = canonical_iso(str(value)) if value else None
        data["archived"] = bool(raw.get("archived", False))
        data["id"] = str(raw["id"])
        stamp = props.get(self.modified_property) or raw.get("updatedAt")
        modified = iso_to_ms(str(stamp)) if stamp else 0
        if deleted and raw.get("archivedAt"):
            modified = max(modified, iso_to_ms(str(raw["archivedAt"])))
        return Record(data["id"], modified, data, deleted)


class OwnersResource:
    """``/crm/v3/owners`` as a full table: a few dozen rows, no modification filter."""

    name = "hubspot_owners"
    primary_key: tuple[str, ...] = ("id",)
    replication_key: str | None = None

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def schema(self) -> dict[str, Any]:
        pii = PII_FIELDS["owners"]
        props: dict[str, Any] = {
            "id": {"type": "string"},
            "email": dict(_NULL_STRING),
            "firstName": dict(_NULL_STRING),
            "lastName": dict(_NULL_STRING),
            "userId": {"type": ["integer", "null"]},
            "userIdIncludingInactive": {"type": ["integer", "null"]},
            "type": dict(_NULL_STRING),
            "createdAt": dict(_DATETIME),
            "updatedAt": dict(_DATETIME),
            "archived": {"type": ["boolean", "null"]},
            "teams": {"type": ["array", "null"], "items": {"type": "object"}},
        }
        for name, kind in pii.items():
            props[name]["x-pii"] = kind
        return {"type": "object", "properties": props, "required": ["id"]}

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        fields = set(self.schema()["properties"])
        after: str | None = None
        new = Progress("hubspot", "GET /crm/v3/owners")
        while True:
            page = self.client.owners_page(after)
            for raw in page.results:
                data = {k: v for k, v in raw.items() if k in fields}
                data["id"] = str(raw["id"])
                stamp = raw.get("updatedAt")
                yield Record(data["id"], iso_to_ms(str(stamp)) if stamp else 0, data), bookmark
            if page.after is None:
                return
            after = new(page.after)


_RESUME = "assoc:"


def _resume_point(cursor: str | None) -> tuple[int, str | None] | None:
    """``(start ms, company list cursor)`` of a full associations read stopped midway."""
    if not cursor or not cursor.startswith(_RESUME):
        return None
    start, _, after = cursor.removeprefix(_RESUME).partition(":")
    try:
        return int(start), after or None
    except ValueError:
        return None  # not ours: read in full


class AssociationsResource:
    """Company associations to contacts, deals and tickets as rows keyed
    ``(from_id, to_id, type)``: company ids from the list endpoint (100 per page), then one v4
    batch read per 100 companies and target type.

    Associations carry no timestamps and changing one need not touch either record's
    modification date, so they can only be read in full. A full read costs about one call per
    300 rows, so it is done at most every ``refresh_hours`` (0: every run): the bookmark's
    watermark is when the last full read started, and a run within the interval reads nothing.
    The new watermark rides on the last row. The rows of each page of 100 companies carry a
    cursor (``assoc:<start ms>:<that page's list cursor>``), so a read stopped midway resumes at
    the page it stopped in, as the same full read: it repeats at most that page's rows.
    """

    name = "hubspot_associations"
    primary_key: tuple[str, ...] = ("from_id", "to_id", "type")
    replication_key: str | None = None
    TARGETS = ("contacts", "deals", "tickets")

    def __init__(
        self,
        client: HubSpotClient,
        targets: Sequence[str] = TARGETS,
        *,
        refresh_hours: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.targets = tuple(targets)
        self.refresh_ms = int(refresh_hours * 3_600_000)
        self._clock = clock

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "from_id": {"type": "string"},
                "to_id": {"type": "string"},
                "type": {"type": "string"},  # company_to_contact, ...
                "from_object": {"type": "string"},
                "to_object": {"type": "string"},
                "type_id": {"type": ["integer", "null"]},
                "category": dict(_NULL_STRING),
                "label": dict(_NULL_STRING),
            },
            "required": ["from_id", "to_id", "type"],
        }

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        started, after = int(self._clock() * 1000), None
        resumed = _resume_point(bookmark.cursor)
        if resumed is not None:  # a full read stopped midway: go on with it
            started, after = resumed
            log.info("hubspot associations: resuming the full read at its last company page")
        elif bookmark.watermark is not None and started - bookmark.watermark < self.refresh_ms:
            log.info("hubspot associations: read in full less than the refresh interval ago")
            return
        held: tuple[Record, Bookmark] | None = None
        for rec, page in self._all(after):
            if held is not None:
                yield held
            held = rec, Bookmark(bookmark.watermark, cursor=f"{_RESUME}{started}:{page or ''}")
        if held is not None:
            yield held[0], Bookmark(started)

    def _all(self, after: str | None) -> Iterator[tuple[Record, str | None]]:
        """Every row from the company page at ``after`` on, with that page's list cursor."""
        new = Progress("hubspot", LIST_ROUTE, after)
        while True:
            page = self.client.list_page("companies", after, properties=["hs_object_id"])
            ids = [str(r["id"]) for r in page.results]
            for target in self.targets:
                for rec in self._pairs(ids, target):
                    yield rec, after
            if page.after is None:
                return
            after = new(page.after)

    def _pairs(self, ids: list[str], target: str) -> Iterator[Record]:
        singular = {"contacts": "contact", "deals": "deal", "tickets": "ticket"}[target]
        kind = f"company_to_{singular}"
        for result in self.client.associations_batch("companies", target, ids):
            from_id = str((result.get("from") or {}).get("id"))
            for to in result.get("to") or []:
                to_id = str(to.get("toObjectId"))
                types = to.get("associationTypes") or [{}]
                first = types[0]
                data = {
                    "from_id": from_id,
                    "to_id": to_id,
                    "type": kind,
                    "from_object": "companies",
                    "to_object": target,
                    "type_id": first.get("typeId"),
                    "category": first.get("category"),
                    "label": first.get("label"),
                }
                yield Record(f"{from_id}:{to_id}:{kind}", 0, data)


class HubSpotConnector:
    """The HubSpot connector: one resource per object type, owners and associations."""

    vendor = "hubspot"

    def __init__(
        self,
        client: HubSpotClient,
        *,
        associations_refresh_hours: float = 0,
        **resource_options: Any,
    ) -> None:
        self.client = client
        self._refresh_hours = associations_refresh_hours
        self._options = resource_options

    def resources(self) -> list[Resource]:
        objects: list[Resource] = [
            HubSpotResource(self.client, o, **self._options) for o in OBJECTS
        ]
        associations = AssociationsResource(self.client, refresh_hours=self._refresh_hours)
        return [*objects, OwnersResource(self.client), associations]

    def close(self) -> None:
        self.client.close()
