"""The connector seam: what a CRM connector gives the tap, without any Singer in it.

A connector (one folder per CRM) offers :class:`Resource` objects. Each resource discovers its
JSON Schema from the CRM and reads records incrementally from a :class:`Bookmark`, yielding each
record together with the bookmark that is safe to save *after* that record has been emitted. The
tap (tap-crm) is a thin adapter: it turns resources into singer-sdk streams and bookmarks into
Singer STATE.

Bookmark semantics, the same for every CRM (Singer delivers at least once: a resumed read may
repeat records, it must never skip one):

- ``watermark`` is the replication value (epoch ms) of the last record emitted.
- ``last_id`` is the id of that record, set only by a connector that reads ties on one
  millisecond in ascending id order (HubSpot's id-keyset pass over a tie block, Salesforce's
  ``ORDER BY SystemModstamp, Id``). A resumed read then starts strictly after
  ``(watermark, last_id)``, so even more ties than one query can return are read once.
  A connector that cannot order ties (Intercom) leaves it ``None`` and resumes at
  ``>= watermark``: the tie block is read again, nothing is lost.
- ``cursor`` is an opaque in-flight position (e.g. a Salesforce locator) a connector may use to
  resume mid-query; it may have expired by then and is only a hint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Bookmark:
    watermark: int | None = None  # epoch ms of the last emitted record's replication value
    last_id: str | None = None  # that record's id, when ties are read in id order
    cursor: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "last_id": self.last_id, "cursor": self.cursor}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Bookmark:
        if not state:
            return cls()
        watermark = state.get("watermark")
        last_id = state.get("last_id")
        return cls(
            int(watermark) if watermark is not None else None,
            str(last_id) if last_id is not None else None,
            state.get("cursor"),
        )


@dataclass(frozen=True, slots=True)
class Record:
    """One record as the tap emits it: typed fields, its key, and whether the CRM deleted it."""

    id: str
    modified: int  # epoch ms of the replication value
    data: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False  # archived / IsDeleted / merged away: emitted with a flag, not dropped


class Resource(Protocol):
    """One readable collection of one CRM (``hubspot_contacts``, ``salesforce_Account``...)."""

    name: str
    primary_key: tuple[str, ...]
    replication_key: str | None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of emitted records, discovered from the CRM (custom fields typed)."""
        ...

    def read(self, bookmark: Bookmark) -> Iterator[tuple[Record, Bookmark]]:
        """Records from the bookmark on, ascending by modification, each with the bookmark that
        is safe to save once that record has been emitted."""
        ...


@runtime_checkable
class CatalogTyped(Protocol):
    """A resource whose :meth:`Resource.schema` asks the CRM's metadata API for field types
    (HubSpot properties, Salesforce describe, Intercom data attributes).

    Discovery writes those types into the catalog; a run given that catalog hands them back,
    so it rebuilds the schema and reads without asking the API again. New CRM fields then
    appear after the next discovery, as with any Singer tap whose catalog is the contract."""

    def catalog_types(self) -> Any:
        """The types ``schema()`` learned, as plain JSON (asks the API if not yet known);
        None when this resource asks the CRM nothing."""
        ...

    def use_catalog_types(self, saved: Any) -> bool:
        """Take the types from a catalog (``catalog_types()`` of an earlier discovery) instead
        of the API. False, and nothing changed, when ``saved`` does not have that form."""
        ...


class Connector(Protocol):
    """A CRM connection: its resources, and one place to release the HTTP client."""

    vendor: str

    def resources(self) -> list[Resource]: ...

    def close(self) -> None: ...
