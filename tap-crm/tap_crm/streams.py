"""One singer-sdk stream per connector resource.

The resource does the reading; this class only turns its output into Singer terms:

- each record's PII fields go through the stream's precompiled PII plan before the SDK sees the
  record, and the SCHEMA message carries the matching transformed schema;
- a deleted/archived/merged record keeps its data and gets ``_sdc_deleted_at`` (the Singer
  convention targets act on), every other record ``_sdc_deleted_at: null``;
- the bookmark the resource pairs with each record becomes the stream's STATE:
  ``replication_key_value`` (what Singer tools and people read) plus ``crm_bookmark``
  (watermark, tie-breaking id and cursor: what a resumed read needs to skip nothing and repeat
  little). A state holding only ``replication_key_value`` (edited by hand, or from another tap)
  resumes at that time.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any, cast

from singer_sdk import Stream
from singer_sdk.helpers._typing import TypeConformanceLevel
from singer_sdk.helpers._util import utc_now
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from singer_sdk.tap_base import Tap

from crm_connectors.base import Bookmark, Resource
from crm_connectors.errors import ConfigError, CrmError, QuotaExhausted
from crm_connectors.pii import StreamPlan
from crm_connectors.timefmt import iso_to_ms, ms_to_iso

from .writer import OrjsonWriter

DELETED_AT = "_sdc_deleted_at"
BOOKMARK_KEY = "crm_bookmark"


def with_deleted_flag(schema: dict[str, Any]) -> dict[str, Any]:
    props = dict(schema.get("properties") or {})
    props[DELETED_AT] = {"type": ["string", "null"], "format": "date-time"}
    return {**schema, "properties": props}


def with_annotations(source: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` carrying ``source``'s annotations (``x-*`` keys: PII marks, the
    field mapping's roles) wherever both have the node. singer-sdk's Catalog keeps only the
    keywords it knows, so a schema read back from a catalog has lost them."""
    out = dict(schema)
    for key, value in source.items():
        if key.startswith("x-"):
            out[key] = value
    props, given = source.get("properties"), schema.get("properties")
    if isinstance(props, Mapping) and isinstance(given, Mapping):
        out["properties"] = {
            name: with_annotations(props[name], node)
            if isinstance(props.get(name), Mapping) and isinstance(node, Mapping)
            else node
            for name, node in given.items()
        }
    return out


class CrmStream(Stream):
    """A connector resource as a Singer stream (see the module doc)."""

    # Records leave the connectors typed to their schema already: the SDK's per-record
    # conformance pass would only cost time.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # A kill -9 loses at most this many records' progress (they are read again, never lost).
    STATE_MSG_FREQUENCY = 1000
    # HubSpot lists archived records before the live ones and Intercom re-reads a second on
    # resume: the output is not ascending by replication value, so the SDK must not check.
    is_sorted = False

    def __init__(
        self,
        tap: Tap,
        resource: Resource,
        plan: StreamPlan,
        schema: dict[str, Any],
        *,
        vendor: str,
        stopped: set[str],
        failed: dict[str, CrmError],
    ) -> None:
        self.resource = resource
        self.vendor = vendor
        self._plan = plan
        self._bookmark: Bookmark | None = None
        # Shared by the tap's streams: vendors out of API quota (a clean stop), and vendors
        # whose reading failed (the run goes on with the other CRMs, then exits non-zero).
        self._stopped = stopped
        self._failed = failed
        self._all_selected: bool | None = None
        self._direct: bool | None = None
        self._state_ms: int | None = None
        self._state_iso = ""
        super().__init__(tap, schema=schema, name=resource.name)
        self.primary_keys = list(resource.primary_key)
        self.replication_key = resource.replication_key

    def starting_bookmark(self, state: dict[str, Any]) -> Bookmark:
        saved = state.get(BOOKMARK_KEY)
        if saved:
            return Bookmark.from_state(saved)
        value = state.get("replication_key_value")
        if isinstance(value, str) and value:
            return Bookmark(iso_to_ms(value))
        return Bookmark()

    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if self.vendor in self._stopped:
            self.logger.warning("%s: skipped, %s API quota guard tripped", self.name, self.vendor)
            return
        if self.vendor in self._failed:
            self.logger.error("%s: skipped, %s failed earlier in this run", self.name, self.vendor)
            return
        bookmark = self.starting_bookmark(self.get_context_state(context))
        apply = self._plan.apply
        unknown = self._not_in_catalog()
        try:
            for rec, after in self.resource.read(bookmark):
                self._bookmark = after
                data = apply(rec.data)
                data[DELETED_AT] = ms_to_iso(rec.modified) if rec.deleted else None
                for name in unknown:
                    data.pop(name, None)
                yield data
        except QuotaExhausted as exc:
            # Stop this CRM cleanly: its state so far is emitted, the next run continues.
            self._stopped.add(self.vendor)
            self.logger.warning("%s: stopped before the API quota runs out: %s", self.name, exc)
        except ConfigError:
            raise
        except CrmError as exc:
            # Credentials rejected twice, retries used up, a request the CRM refuses: this
            # CRM's streams stop here. The records so far and their STATE are emitted (a rerun
            # resumes from them); the other CRMs' streams still run; the tap exits non-zero.
            self._failed.setdefault(self.vendor, exc)
            self.logger.error("%s: stopped: %s", self.name, exc)

    def _not_in_catalog(self) -> tuple[str, ...]:
        """Fields the CRM has now that the catalog given to the run does not list (added since
        the catalog was discovered): left out of the records, which must match the catalog's
        schema. They are synced once discovery runs again."""
        known = set((self.effective_schema.get("properties") or {}).keys())
        unknown = tuple(sorted(set(self.schema.get("properties") or {}) - known))
        if unknown:
            self.logger.info(
                "%s: %d field(s) not in the catalog are left out until the next discovery: %s",
                self.name,
                len(unknown),
                ", ".join(unknown[:20]),
            )
        return unknown

    def _selects_all(self) -> bool:
        """Whether every property is selected (the catalog's mask, read once)."""
        if self._all_selected is None:
            self._all_selected = all(self.mask.values())
        return self._all_selected

    def _write_record_message(self, record: dict[str, Any]) -> None:
        # The common case, every property selected and no stream maps configured: the RECORD
        # message goes to the writer as a plain dict (the same JSON line), without building a
        # RecordMessage and a stream-map pass per record.
        if self._direct is None:
            self._direct = (
                self._selects_all()
                and len(self.stream_maps) == 1
                and type(self.stream_maps[0]) is SameRecordTransform
                and self.stream_maps[0].stream_alias == self.name
                and isinstance(self._tap.message_writer, OrjsonWriter)
            )
        if not self._direct:
            super()._write_record_message(record)
            return
        message: dict[str, Any] = {"type": "RECORD", "stream": self.name, "record": record}
        if self._stream_version is not None:
            message["version"] = self._stream_version
        message["time_extracted"] = utc_now()
        cast(OrjsonWriter, self._tap.message_writer).write_record_dict(message)
        self.state_manager.is_flushed = False

    def _generate_record_messages(
        self, record: dict[str, Any]
    ) -> Generator[RecordMessage, None, None]:
        # The SDK walks every record to pop deselected properties and conform types. With all
        # properties selected and records typed by the connector, both are no-ops: skip them.
        if not self._selects_all():
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )

    def _increment_stream_state(
        self, latest_record: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
    ) -> None:
        bookmark = self._bookmark
        if bookmark is None or (bookmark.watermark is None and bookmark.cursor is None):
            return
        state = self.get_context_state(context)
        if self.replication_key is not None and bookmark.watermark is not None:
            state["replication_key"] = self.replication_key
            if bookmark.watermark != self._state_ms:  # most records share their neighbour's ms
                self._state_ms = bookmark.watermark
                self._state_iso = ms_to_iso(bookmark.watermark)
            state["replication_key_value"] = self._state_iso
        state[BOOKMARK_KEY] = bookmark.to_state()  # also a full-table resource's own bookmark
