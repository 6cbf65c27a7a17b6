"""The connector seam: what a CRM connector gives the plugins, without any Singer in it.

A CRM is one folder (``crm_connectors/<name>/``) whose ``__init__.py`` holds a
:class:`ConnectorSpec`, registered under the entry-point group ``crm_connectors``
(:mod:`crm_connectors.registry`). The spec says what the plugins need of that CRM: its settings,
how to tell they are set, a :class:`Connector` to read with, an :class:`AccountWriter` (and
:class:`Followups`) to write scores back with, the mapping of its streams into the canonical
model, and where its emulator lives for the sandbox.

A connector offers :class:`Resource` objects. Each resource discovers its
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

import datetime as dt
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .canonical import Mapped
    from .fields import CrmField
    from .roles import Marks, Role


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


#: The nullable JSON Schema of each field kind a resource's schema is built from ("timestamp":
#: a date-time string, whatever the CRM sends on the wire).
FIELD_KINDS: Mapping[str, Mapping[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
    "object": {"type": ["object", "null"]},
    "array": {"type": ["array", "null"]},
}


def saved_types(saved: Any, kinds: Container[str] | None = None) -> dict[str, str] | None:
    """``saved`` as ``{field: kind}`` when it has that form (non-empty strings, each kind one of
    ``kinds`` if given): the check of :meth:`CatalogTyped.use_catalog_types` for a catalog's
    types of that shape; None otherwise."""
    if not isinstance(saved, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v and (kinds is None or v in kinds)
        for k, v in saved.items()
    ):
        return None
    return dict(saved)


class Connector(Protocol):
    """A CRM connection: its resources, and one place to release the HTTP client."""

    vendor: str

    def resources(self) -> list[Resource]: ...

    def close(self) -> None: ...


# -- writing back --------------------------------------------------------------------------------


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
    ``ENTITY_IS_DELETED``...) or ours (``INVALID_VALUE``, ``NOT_SENT``); ``detail`` is our own
    words, naming fields, never values."""

    id: str
    ok: bool
    error_code: str | None = None
    retriable: bool = False
    detail: str = ""


class AccountWriter(Protocol):
    """The fields a loader owns on one CRM's account records (see crm_connectors.writing).

    Record ids are the CRM's own; field keys are the logical ones (``score``, ``band``...)."""

    crm: str
    object: str  # the CRM's account object: "companies", "Account"...
    batch_max: int  # records per write call
    fields: tuple[CrmField, ...]

    def ensure_fields(self, *, create: bool = True) -> SetupReport:
        """List the CRM's fields once, create the owned ones that are missing (``create``),
        never touch another field; report what a person must do when creating is refused."""
        ...

    def read(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current values, canonical, of the records found (missing ones left out)."""
        ...

    def write(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        """Absolute values, in batches of ``batch_max``; one result per input, in order."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Followups(Protocol):
    """Follow-ups for an account's owner (retention programs): one object per call.

    ``kind`` is ``"task"`` (a subject and a body, due on a date) or ``"tag"`` (a name only,
    shared by the accounts of one transition). Creates are not repeated by the HTTP layer once
    sent, unless the API makes them idempotent; after an ambiguous failure the caller finds the
    follow-up by its ``marker`` (letters, digits and ``-``), given at create time."""

    crm: str
    followup_kind: str

    def create_followup(
        self,
        record_id: str,
        subject: str,
        body: str,
        *,
        marker: str,
        due: dt.date | None = None,
    ) -> str:
        """Create one follow-up on the record; ``marker`` (also in the subject) is what
        :meth:`find_followup` finds it by. Returns its id."""
        ...

    def find_followup(self, record_id: str, marker: str) -> str | None: ...

    def delete_followup(self, object_id: str) -> bool: ...

    # Optional: ``followup_kept(object_id) -> str | None``, why a person's work on the follow-up
    # (completed, edited) keeps it from a rollback; without it every follow-up is deleted.


# -- the registry's unit -------------------------------------------------------------------------

#: One stream's records into canonical rows (crm_connectors.canonical).
Mapper = Callable[[Mapping[str, Any]], "list[Mapped]"]
#: A connector's mapping function: ``f(marks, record)``, ``marks`` saying which of the
#: record's fields hold which role (crm_connectors.roles; bound per stream by the loader).
FieldMapper = Callable[["Marks", Mapping[str, Any]], "list[Mapped]"]
#: The mapping of a stream the field mapping names: ``f(object, marks, record)``.
EntityMapper = Callable[[str, "Marks", Mapping[str, Any]], "list[Mapped]"]


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """Everything the plugins and the sandbox know of one CRM (its folder's ``SPEC``).

    ``name`` prefixes its streams (``<name>_<object>``), its settings (``<name>_*``) and its
    canonical keys (``<name>:<object>:<id>``)."""

    name: str
    label: str
    #: Flat settings, JSON Schema per name (crm_connectors.settings), shared by both plugins.
    settings: Mapping[str, Mapping[str, Any]]
    #: Whether ``config`` holds this CRM's credentials (a run reads every CRM that has them).
    configured: Callable[[Mapping[str, Any]], bool]
    #: The settings to fill, for a message when no CRM is configured.
    needs: str
    #: ``connect(config, **client_kw)``: a connected reader.
    connect: Callable[..., Connector]
    #: ``writer(config, fields, **client_kw)``: an AccountWriter (and Followups) for the given
    #: logical fields; None for a read-only connector.
    writer: Callable[..., AccountWriter] | None = None
    #: Settings only write-back uses (the loader's).
    writer_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The sets of settings that connect it, any one of which will do (credentials and, where the
    #: CRM needs one, the account): Meltano's ``settings_group_validation``.
    credentials: tuple[tuple[str, ...], ...] = ()
    #: Stream name -> its canonical mapping.
    mapping: Mapping[str, FieldMapper] = field(default_factory=dict)
    #: The facts users map onto their own fields (``<name>_field_mapping``), by role.
    roles: Mapping[str, Role] = field(default_factory=dict)
    #: Entity -> the mapping of a stream the field mapping names (``x-canonical-entity``: a
    #: Salesforce NPS object), whatever its name.
    entity_mapping: Mapping[str, EntityMapper] = field(default_factory=dict)
    #: ``"module:ATTR"`` of its sandbox emulator (crm_connectors.sandbox.EmulatorSpec); never
    #: imported by the plugins.
    emulator: str = ""
