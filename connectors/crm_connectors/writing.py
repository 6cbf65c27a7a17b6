"""What every CRM's writer shares: the write loop and the ensure-fields algorithm, each written
once here, with the vendor's hooks in its folder's ``writer.py``.

**write** takes ``(id, {key: value})`` pairs, puts each value in canonical form
(crm_connectors.fields) and sends them in batches of ``batch_max`` (:meth:`Writer.send_batch`,
the vendor's call). Results come back per record, in input order:

- a value that cannot be written (``InvalidValue``) fails that record with ``INVALID_VALUE``
  before any call, and is not sent;
- per-record errors of the API fail that record with the vendor's code;
- an API that rejects a whole batch for one bad record (a 4xx about the records sent) gets it
  split in halves until the rejected records stand alone (:meth:`Writer.send_split`), so the
  others are still written: at most 2n-1 calls for n records, and only on that path;
- when the HTTP layer gives up on a transient failure (``RetriableError``), that batch and the
  remaining ones fail with ``retriable=True`` and are not sent: the CRM is down or throttling,
  the plan stays pending for the next run;
- errors no record can fix are raised: ``AuthError``, ``MissingScopes`` (a token without write
  scope), ``QuotaExhausted``, and a request the API refuses as a whole (a bug here).

Every request sets absolute values, so writers send them as idempotent and the HTTP layer
retries throttles, 5xx and dropped connections. A ``(id, {})`` pair is a no-op that succeeds
without a call; an id given twice, or a key that is not an owned field, is a ValueError (a bug
in the caller).

**ensure_fields** lists the CRM's fields once (:meth:`Writer.list_fields`) and creates only the
owned ones that are missing (:meth:`Writer.create_field`, after :meth:`Writer.prepare_create`);
it never changes any other field. A create that already happened answers "exists", which counts
as existing, so creates are safe to retry. When the credentials may not create fields
(``MissingScopes``), or ``create=False``, the report's ``missing`` and ``message`` name each
field to create by hand, with its type (:meth:`Writer.instructions`). A CRM that hides new
fields until access is granted says which in :meth:`Writer.unwritable` (and may grant it
there). ``existing`` means present in the CRM; ``missing`` means not writable yet.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from .base import SetupReport, WriteResult
from .errors import CrmError, FatalError, MissingScopes, RetriableError, WriteError
from .fields import CrmField, Field, InvalidValue, normalize
from .timefmt import iso_to_ms

log = logging.getLogger(__name__)

#: Statuses of an API error that concern the record(s) of the call, not the run.
RECORD_STATUSES = frozenset({400, 404, 409, 410, 422})
#: A follow-up is due this many days after it is made, unless the caller says when.
FOLLOWUP_DUE_DAYS = 3
_MARKER = re.compile(r"^[A-Za-z0-9-]{6,64}\Z")

_T = TypeVar("_T")
_W = TypeVar("_W", bound="Writer")

#: What a field create found: made now, made already (or meanwhile), or not creatable (a name
#: the CRM keeps for an archived field).
Created = Literal["created", "exists", "blocked"]


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def error_code(err: CrmError) -> str:
    return err.code or type(err).__name__


def is_record_error(err: CrmError) -> bool:
    """An error answer about the record(s) sent, which another record would not get."""
    return (
        isinstance(err, (FatalError, WriteError))
        and not isinstance(err, MissingScopes)
        and (err.status in RECORD_STATUSES)
    )


def listing(fields: Sequence[CrmField]) -> str:
    return "".join(f"\n  - {cf.describe()}" for cf in fields)


def due_date(due: dt.date | None) -> dt.date:
    if due is not None:
        return due
    return dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=FOLLOWUP_DUE_DAYS)


def check_marker(marker: str) -> str:
    """A follow-up marker: 6 to 64 letters, digits or '-' (nothing to escape in any query)."""
    if not _MARKER.match(marker):
        raise ValueError("a follow-up marker is 6 to 64 letters, digits or '-'")
    return marker


#: A follow-up modified this long after it was created was edited by a person (our own create
#: may leave the two times a moment apart).
EDIT_GRACE = dt.timedelta(seconds=60)


def person_touched(completed: bool, created: Any, modified: Any) -> str | None:
    """Why a follow-up is a person's work now (a rollback leaves it): ``"completed"``,
    ``"edited"`` (modified more than :data:`EDIT_GRACE` after it was created), or None."""
    if completed:
        return "completed"
    try:
        made, changed = iso_to_ms(str(created)), iso_to_ms(str(modified))
    except ValueError:
        return None
    return "edited" if changed - made > EDIT_GRACE // dt.timedelta(milliseconds=1) else None


@dataclass(frozen=True, slots=True)
class Change:
    """One record of a write: its position in the caller's list, id and canonical values."""

    index: int
    id: str
    values: dict[CrmField, Any]


class Writer:
    """Base of the CRMs' writers (crm_connectors.base.AccountWriter): the shared algorithms.

    A subclass sets ``crm``, ``object``, ``batch_max`` and ``kinds`` (the CRM's type for each
    field kind), names the fields (:meth:`field_name`) and implements the hooks marked below."""

    crm: str = ""
    object: str = ""
    batch_max: int = 1
    #: The CRM's type name per field kind, for messages and definitions.
    kinds: ClassVar[Mapping[str, str]] = {}
    #: The API name of each logical key this writer knows; others get :meth:`field_name`.
    names: ClassVar[Mapping[str, str]] = {}
    #: What a person opens to create fields by hand, for :meth:`instructions`.
    where: ClassVar[str] = ""

    def __init__(self, client: Any, fields: Sequence[Field]) -> None:
        self.client = client
        self.fields: tuple[CrmField, ...] = tuple(
            CrmField(f, self.names.get(f.key) or self.field_name(f.key), self.crm_type(f))
            for f in fields
        )
        self._by_key = {cf.key: cf for cf in self.fields}

    def field_name(self, key: str) -> str:
        """The API name of a logical field this writer has no name for."""
        raise NotImplementedError

    def crm_type(self, f: Field) -> str:
        """The CRM's type for a logical field, in the CRM's words."""
        return self.kinds[f.kind]

    def close(self) -> None:
        self.client.close()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- ensure_fields -----------------------------------------------------------------------

    def ensure_fields(self, *, create: bool = True) -> SetupReport:
        have = self.list_fields()
        existing = [cf.name for cf in self.fields if self.present(cf, have)]
        todo = [cf for cf in self.fields if cf.name not in existing]
        created: list[str] = []
        blocked: list[str] = []
        denied: MissingScopes | None = None
        if todo and create:
            try:
                self.prepare_create(have)
                for cf in todo:
                    outcome = self.create_field(cf, have)
                    {"created": created, "exists": existing, "blocked": blocked}[outcome].append(
                        cf.name
                    )
            except MissingScopes as err:
                denied = err
        present = [cf for cf in self.fields if cf.name in created or cf.name in existing]
        unwritable = self.unwritable(present, grant=create and denied is None)
        absent = [cf for cf in todo if cf.name not in created and cf.name not in existing]
        why = self.denied_reason(denied) if denied is not None else ""
        if not why and not create:
            why = "creating them was not asked for"
        notes = self.drift(have)
        if absent:
            notes.insert(0, f"{self.where}{' - ' + why if why else ''}:{listing(absent)}")
            if blocked:
                notes.append(self.blocked_note(blocked))
        if unwritable:
            notes.append(self.unwritable_note(unwritable))
        if absent or unwritable:
            notes.append("Then run `target-health setup` again.")
        missing = [cf.name for cf in self.fields if cf in absent or cf in unwritable]
        return SetupReport(self.crm, created, existing, missing, "\n".join(notes))

    # hooks of ensure_fields

    def list_fields(self) -> Mapping[str, Any]:
        """The CRM's fields on ``object``, by name (one call or a few)."""
        raise NotImplementedError

    def present(self, cf: CrmField, have: Mapping[str, Any]) -> bool:
        return cf.name in have

    def prepare_create(self, have: Mapping[str, Any]) -> None:
        """Anything the creates need first (a property group)."""
        return None

    def create_field(self, cf: CrmField, have: Mapping[str, Any]) -> Created:
        raise NotImplementedError

    def unwritable(self, present: Sequence[CrmField], *, grant: bool) -> list[CrmField]:
        """Owned fields that exist but this user cannot write yet (granting access first when
        ``grant`` and the CRM allows it)."""
        return []

    def drift(self, have: Mapping[str, Any]) -> list[str]:
        """Notes on owned fields whose definition in the CRM differs from ours."""
        return []

    def denied_reason(self, err: MissingScopes) -> str:
        return "the credentials may not create fields"

    def blocked_note(self, names: Sequence[str]) -> str:
        return f"not creatable under these names: {', '.join(names)}"

    def unwritable_note(self, fields: Sequence[CrmField]) -> str:
        return f"grant the integration user access to these fields:{listing(fields)}"

    # -- write -------------------------------------------------------------------------------

    def write(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult | None] = [None] * len(changes)
        ready: list[Change] = []
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
                canonical = {
                    self._by_key[k]: normalize(self._by_key[k].field, v) for k, v in values.items()
                }
            except InvalidValue as err:
                out[index] = WriteResult(rid, False, "INVALID_VALUE", False, str(err))
                continue
            if canonical:
                ready.append(Change(index, rid, canonical))
            else:
                out[index] = WriteResult(rid, True)
        halted: RetriableError | None = None
        for batch in chunks(ready, self.batch_max):
            results: list[WriteResult]
            if halted is None:
                try:
                    results = self.send_batch(batch)
                except RetriableError as err:
                    halted = err
                    log.warning("%s; the rest of this write is left for a later run", err)
                    results = [
                        WriteResult(
                            c.id, False, error_code(err), True, "the CRM did not accept the call"
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
        log.debug("%s: wrote %d record(s), %d failed", self.crm, len(done) - failed, failed)
        return done

    def send_batch(self, batch: Sequence[Change]) -> list[WriteResult]:
        """One write call for ``batch`` (at most ``batch_max`` records), results in order."""
        raise NotImplementedError

    def send_split(self, batch: Sequence[Change], send: Any, refused: str) -> list[WriteResult]:
        """``send(batch)`` for an API that rejects a whole batch for one bad record: on a
        record error the batch is halved until the rejected records stand alone, each failed
        with the vendor's code and ``refused`` as detail."""
        try:
            results: list[WriteResult] = send(batch)
            return results
        except CrmError as err:
            if not is_record_error(err):
                raise
            if len(batch) == 1:
                return [WriteResult(batch[0].id, False, error_code(err), False, refused)]
            half = len(batch) // 2
            return self.send_split(batch[:half], send, refused) + self.send_split(
                batch[half:], send, refused
            )
