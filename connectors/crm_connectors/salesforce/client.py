"""The Salesforce REST client of the connector: :class:`ApiClient` + :class:`SalesforcePacer` +
:class:`SalesforceOAuth`.

The API host is the ``instance_url`` of the token response, not the login host
[API.md §2.1]; every call goes to ``{instance_url}/services/data/vNN.0``. Each method passes
``route=`` as a *template* (``GET /query/{locator}``), never with ids or SOQL in it, so logs and
errors stay free of record data. A ``/query`` GET is a read and is retried like any GET.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..http import Sleep, VendorClient
from ..pacing import Pacer
from .auth import SalesforceOAuth
from .errors import RULES
from .pacing import SalesforcePacer

#: Spring '26 [API.md §2.1].
API_VERSION = "66.0"
#: ``Sforce-Query-Options: batchSize`` is clamped to [200, 2000] [API.md §2.2].
BATCH_MAX = 2000


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of ``/query`` or ``/queryAll``: its records, ``totalSize`` and the host-relative
    ``nextRecordsUrl`` (None on the last page, where ``done`` is true [API.md §2.2])."""

    records: list[dict[str, Any]]
    total: int
    next_url: str | None


@dataclass(frozen=True, slots=True)
class BulkPage:
    """One page of Bulk 2.0 query results: CSV text and the next ``Sforce-Locator`` (None when
    the header says ``null`` [API.md §2.7])."""

    csv: str
    locator: str | None


def _is_page(body: Any) -> bool:
    """A query page as documented [API.md §2.2]: ``records`` (objects, their ``Id`` text when
    selected), ``totalSize`` a number, ``done`` a boolean."""
    if not isinstance(body, dict):
        return False
    records = body.get("records")
    return (
        isinstance(records, list)
        and all(isinstance(r, dict) and isinstance(r.get("Id", ""), str) for r in records)
        and type(body.get("totalSize")) is int
        and isinstance(body.get("done"), bool)
    )


def _is_describe(body: Any) -> bool:
    """A describe: ``fields``, each an object with its ``name`` [API.md §2.3]."""
    fields = body.get("fields") if isinstance(body, dict) else None
    return isinstance(fields, list) and all(
        isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields
    )


def _is_job(body: Any) -> bool:
    """A Bulk API 2.0 query job: its ``id`` and ``state`` as text [API.md §2.7]."""
    return isinstance(body, dict) and all(isinstance(body.get(k), str) for k in ("id", "state"))


def _is_results(body: Any) -> bool:
    """``/composite/sobjects``: one result object per record [API.md §2.5]."""
    return isinstance(body, list) and all(isinstance(r, dict) for r in body)


def _is_created(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("id"), str)


def _page(body: Any) -> QueryPage:
    body = body or {}
    nxt = body.get("nextRecordsUrl")
    return QueryPage(
        list(body.get("records") or []),
        int(body.get("totalSize") or 0),
        str(nxt) if nxt and not body.get("done", False) else None,
    )


class SalesforceClient(VendorClient):
    """Salesforce REST over one reused HTTP connection, guarded by the daily-quota pacer."""

    vendor = "salesforce"
    errors = RULES

    def __init__(
        self,
        credentials: SalesforceOAuth,
        *,
        api_version: str = API_VERSION,
        **client_kw: Any,
    ) -> None:
        """The org's REST base comes from the token response (``instance_url``); the other
        keywords are :class:`VendorClient`'s (pacer, retry, sleep, on_retry, transport)."""
        self.credentials = credentials
        base = f"{credentials.instance_url.rstrip('/')}/services/data/v{api_version}"
        super().__init__(credentials, base_url=base, **client_kw)

    def default_pacer(self, sleep: Sleep) -> Pacer:
        return SalesforcePacer()

    # -- describe -------------------------------------------------------------------------------

    def describe(self, sobject: str) -> dict[str, Any]:
        """``GET /sobjects/{T}/describe``: the object's fields with their types."""
        body = self.api.request(
            "GET",
            f"/sobjects/{sobject}/describe",
            route="GET /sobjects/{T}/describe",
            shape=_is_describe,
        )
        return dict(body or {})

    # -- SOQL -----------------------------------------------------------------------------------

    def query(self, soql: str, *, deleted: bool = False, batch_size: int = BATCH_MAX) -> QueryPage:
        """The first page of ``/query`` (``/queryAll`` with ``deleted``: the recycle bin and
        merged rows too [API.md §2.2])."""
        endpoint = "/queryAll" if deleted else "/query"
        body = self.api.request(
            "GET",
            endpoint,
            params={"q": soql},
            headers={"Sforce-Query-Options": f"batchSize={batch_size}"},
            route=f"GET {endpoint}",
            shape=_is_page,
        )
        return _page(body)

    def query_more(self, next_url: str) -> QueryPage:
        """The page at a ``nextRecordsUrl`` (host-relative, with the version prefix)."""
        route = "GET /queryAll/{locator}" if "/queryAll/" in next_url else "GET /query/{locator}"
        body = self.api.request("GET", self.api.absolute(next_url), route=route, shape=_is_page)
        return _page(body)

    def count(self, soql: str, *, deleted: bool = False) -> int:
        """``totalSize`` of a ``SELECT COUNT() ...`` query."""
        return self.query(soql, deleted=deleted).total

    # -- Bulk API 2.0 query -----------------------------------------------------------------------

    def create_query_job(self, soql: str, *, deleted: bool = False) -> dict[str, Any]:
        """``POST /jobs/query``: a ``query``/``queryAll`` job over CSV [API.md §2.7]. Sent as
        idempotent: a retry after a lost answer at worst leaves an unused job, which expires."""
        body = self.api.request(
            "POST",
            "/jobs/query",
            json={
                "operation": "queryAll" if deleted else "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
            route="POST /jobs/query",
            idempotent=True,
            shape=_is_job,
        )
        return dict(body or {})

    def query_job(self, job_id: str) -> dict[str, Any]:
        body = self.api.request(
            "GET", f"/jobs/query/{job_id}", route="GET /jobs/query/{id}", shape=_is_job
        )
        return dict(body or {})

    def query_job_results(
        self, job_id: str, locator: str | None = None, max_records: int | None = None
    ) -> BulkPage:
        """``GET /jobs/query/{id}/results``: CSV paged by the ``Sforce-Locator`` header."""
        params: dict[str, Any] = {}
        if locator:
            params["locator"] = locator
        if max_records:
            params["maxRecords"] = max_records
        response = self.api.send(
            "GET",
            f"/jobs/query/{job_id}/results",
            params=params,
            route="GET /jobs/query/{id}/results",
        )
        nxt = response.headers.get("Sforce-Locator")
        return BulkPage(response.text, nxt if nxt and nxt != "null" else None)

    def delete_query_job(self, job_id: str) -> None:
        self.api.request("DELETE", f"/jobs/query/{job_id}", route="DELETE /jobs/query/{id}")

    # -- writes ---------------------------------------------------------------------------------

    def create_custom_field(self, definition: dict[str, Any]) -> None:
        """``POST /tooling/sobjects/CustomField``; a repeat answers 400
        ``DUPLICATE_DEVELOPER_NAME`` [API.md §2.10]."""
        self.api.request(
            "POST",
            "/tooling/sobjects/CustomField",
            json=definition,
            route="POST /tooling/sobjects/CustomField",
            idempotent=True,
        )

    def grant_field(self, permission_set_id: str, sobject: str, field: str) -> None:
        """Read and Edit field-level security on ``sobject.field`` through ``FieldPermissions``;
        a repeated grant answers ``DUPLICATE_VALUE``."""
        self.api.request(
            "POST",
            "/sobjects/FieldPermissions",
            json={
                "ParentId": permission_set_id,
                "SobjectType": sobject,
                "Field": f"{sobject}.{field}",
                "PermissionsRead": True,
                "PermissionsEdit": True,
            },
            route="POST /sobjects/FieldPermissions",
            idempotent=True,
        )

    def update_records(self, records: list[dict[str, Any]]) -> Any:
        """``PATCH /composite/sobjects`` with ``allOrNone: false`` (at most 200): one result per
        record, in request order [API.md §2.5]. Absolute values, so idempotent."""
        return self.api.request(
            "PATCH",
            "/composite/sobjects",
            json={"allOrNone": False, "records": records},
            route="PATCH /composite/sobjects",
            idempotent=True,
            shape=_is_results,
        )

    def create(self, sobject: str, record: dict[str, Any]) -> str:
        """``POST /sobjects/{T}``: the new record's id. Not idempotent (a repeat makes a second
        record), so never repeated once sent."""
        created = self.api.request(
            "POST",
            f"/sobjects/{sobject}",
            json=record,
            route="POST /sobjects/{T}",
            idempotent=False,
            shape=_is_created,
        )
        return str(created["id"])

    def delete(self, sobject: str, record_id: str) -> None:
        """``DELETE /sobjects/{T}/{id}``: NotFound when gone (``ENTITY_IS_DELETED`` when in the
        recycle bin already)."""
        self.api.request(
            "DELETE", f"/sobjects/{sobject}/{record_id}", route="DELETE /sobjects/{T}/{id}"
        )
