"""The HubSpot CRM v3 client of the connector: :class:`ApiClient` + :class:`HubSpotPacer` + a token.

Small typed methods, one per call the readers make. Each passes ``route=`` as a *template*
(``GET /crm/v3/objects/{t}``), never with ids or emails in it, so logs, errors and the pacer's
search detection stay free of record data. Search and batch-read POSTs are reads, so they are
sent with ``idempotent=True`` and retried like GETs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import NotFound
from ..http import Sleep, VendorClient
from ..pacing import Pacer
from .errors import RULES
from .pacing import HubSpotPacer

#: The real API host [API.md §1.0]; tests pass the sandbox's URL.
DEFAULT_BASE_URL = "https://api.hubapi.com"
#: List pages hold at most 100 records [API.md §1.3].
LIST_MAX = 100
#: Search pages hold at most 200 records [API.md §1.3].
SEARCH_MAX = 200
#: Batch endpoints take at most 100 inputs [API.md §1.5].
BATCH_MAX = 100


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list or search: its results, the next ``after`` (None on the last page,
    which has no ``paging`` key [API.md §1.3]) and search's ``total``."""

    results: list[dict[str, Any]]
    after: str | None
    total: int | None = None


def _page(body: Any) -> Page:
    body = body or {}
    nxt = ((body.get("paging") or {}).get("next") or {}).get("after")
    total = body.get("total")
    return Page(
        list(body.get("results") or []),
        str(nxt) if nxt is not None else None,
        int(total) if total is not None else None,
    )


class HubSpotClient(VendorClient):
    """HubSpot CRM v3 over one reused HTTP connection, paced by HubSpot's own headers."""

    vendor = "hubspot"
    errors = RULES

    default_base_url = DEFAULT_BASE_URL

    def default_pacer(self, sleep: Sleep) -> Pacer:
        return HubSpotPacer(sleep=sleep)

    # -- objects ------------------------------------------------------------------------------

    def list_page(
        self,
        obj: str,
        after: str | None = None,
        limit: int = LIST_MAX,
        properties: Sequence[str] = (),
        archived: bool = False,
    ) -> Page:
        """``GET /crm/v3/objects/{t}``: one page in id order; ``archived=True`` returns *only*
        archived records [API.md §1.6]."""
        params: dict[str, Any] = {"limit": min(limit, LIST_MAX), "archived": str(archived).lower()}
        if after:
            params["after"] = after
        if properties:
            params["properties"] = ",".join(properties)
        body = self.api.request(
            "GET",
            f"/crm/v3/objects/{obj}",
            params=params,
            route="GET /crm/v3/objects/{t}",
            shape=_objects,
        )
        return _page(body)

    def search_page(self, obj: str, body: dict[str, Any]) -> Page:
        """``POST /crm/v3/objects/{t}/search``: a read, so retried as idempotent."""
        reply = self.api.request(
            "POST",
            f"/crm/v3/objects/{obj}/search",
            json=body,
            route="POST /crm/v3/objects/{t}/search",
            idempotent=True,
            shape=_search,
        )
        return _page(reply)

    def properties(self, obj: str) -> list[dict[str, Any]]:
        """``GET /crm/v3/properties/{t}``: every live property definition with its real type."""
        body = self.api.request(
            "GET",
            f"/crm/v3/properties/{obj}",
            route="GET /crm/v3/properties/{t}",
            shape=_properties,
        )
        return list((body or {}).get("results") or [])

    # -- owners and associations ----------------------------------------------------------------

    def owners_page(self, after: str | None = None, limit: int = LIST_MAX) -> Page:
        """``GET /crm/v3/owners``: one page of owners."""
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return _page(
            self.api.request(
                "GET", "/crm/v3/owners", params=params, route="GET /crm/v3/owners", shape=_objects
            )
        )

    def associations_batch(
        self, from_obj: str, to_obj: str, ids: Iterable[str]
    ) -> list[dict[str, Any]]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read`` for up to 100 ids: results
        ``{from:{id}, to:[{toObjectId, associationTypes}]}``. Ids with no associations come back
        as 207 errors ``NO_ASSOCIATIONS_FOUND`` [API.md, Associations], which are not
        failures for a reader and are ignored."""
        inputs = [{"id": str(i)} for i in ids]
        if not inputs:
            return []
        if len(inputs) > BATCH_MAX:
            raise ValueError(f"at most {BATCH_MAX} ids per batch read, got {len(inputs)}")
        body = self.api.request(
            "POST",
            f"/crm/v4/associations/{from_obj}/{to_obj}/batch/read",
            json={"inputs": inputs},
            route="POST /crm/v4/associations/{t}/{to_t}/batch/read",
            idempotent=True,
            shape=_associations,
        )
        return list((body or {}).get("results") or [])

    # -- writes: properties, batch read/update, objects -------------------------------------------

    def property_groups(self, obj: str) -> list[dict[str, Any]]:
        """``GET /crm/v3/properties/{t}/groups``."""
        body = self.api.request(
            "GET",
            f"/crm/v3/properties/{obj}/groups",
            route="GET /crm/v3/properties/{t}/groups",
            shape=_properties,
        )
        return list((body or {}).get("results") or [])

    def create_property_group(self, obj: str, group: dict[str, Any]) -> None:
        """``POST /crm/v3/properties/{t}/groups``; a repeat answers 409 (WriteConflict)."""
        self.api.request(
            "POST",
            f"/crm/v3/properties/{obj}/groups",
            json=group,
            route="POST /crm/v3/properties/{t}/groups",
            idempotent=True,
        )

    def create_property(self, obj: str, definition: dict[str, Any]) -> None:
        """``POST /crm/v3/properties/{t}``; a repeat (or an archived property of that name)
        answers 409 (WriteConflict)."""
        self.api.request(
            "POST",
            f"/crm/v3/properties/{obj}",
            json=definition,
            route="POST /crm/v3/properties/{t}",
            idempotent=True,
        )

    def property_archived(self, obj: str, name: str) -> bool:
        """Whether an archived property holds ``name`` (``GET ...?archived=true``)."""
        try:
            self.api.request(
                "GET",
                f"/crm/v3/properties/{obj}/{quote(name, safe='')}",
                params={"archived": "true"},
                route="GET /crm/v3/properties/{t}/{name}",
            )
        except NotFound:
            return False
        return True

    def batch_read(
        self, obj: str, ids: Sequence[str], properties: Sequence[str]
    ) -> list[dict[str, Any]]:
        """``POST /crm/v3/objects/{t}/batch/read`` for up to 100 ids; unknown ids are left out
        (207 ``OBJECT_NOT_FOUND``), a merged-away id may come back as its survivor."""
        body = self.api.request(
            "POST",
            f"/crm/v3/objects/{obj}/batch/read",
            json={"properties": list(properties), "inputs": [{"id": i} for i in ids]},
            route="POST /crm/v3/objects/{t}/batch/read",
            idempotent=True,
            shape=_objects,
        )
        return list((body or {}).get("results") or [])

    def batch_update(self, obj: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{t}/batch/update``: absolute values, so idempotent. The body
        holds ``results`` and, on a 207, ``errors`` [API.md §1.5]."""
        body = self.api.request(
            "POST",
            f"/crm/v3/objects/{obj}/batch/update",
            json={"inputs": inputs},
            route="POST /crm/v3/objects/{t}/batch/update",
            idempotent=True,
            shape=_batch,
        )
        return dict(body or {})

    def get_object(
        self, obj: str, object_id: str, properties: Sequence[str] = ()
    ) -> dict[str, Any]:
        """``GET /crm/v3/objects/{t}/{id}`` (NotFound when it is gone)."""
        params = {"properties": ",".join(properties)} if properties else None
        body = self.api.request(
            "GET",
            f"/crm/v3/objects/{obj}/{quote(object_id, safe='')}",
            params=params,
            route="GET /crm/v3/objects/{t}/{id}",
            shape=_one,
        )
        return dict(body or {})

    def create_object(self, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{t}``: not idempotent (a repeat makes a second object), so
        never repeated once sent."""
        created = self.api.request(
            "POST",
            f"/crm/v3/objects/{obj}",
            json=body,
            route="POST /crm/v3/objects/{t}",
            idempotent=False,
            shape=_one,
        )
        return dict(created or {})

    def archive_object(self, obj: str, object_id: str) -> None:
        """``DELETE /crm/v3/objects/{t}/{id}`` (HubSpot answers 204 even when it is gone)."""
        self.api.request(
            "DELETE",
            f"/crm/v3/objects/{obj}/{quote(object_id, safe='')}",
            route="DELETE /crm/v3/objects/{t}/{id}",
        )

    def associated_ids(self, obj: str, object_id: str, to_obj: str) -> list[str]:
        """Ids of ``to_obj`` records associated with one record, every page
        (``GET /crm/v3/objects/{t}/{id}/associations/{to}``)."""
        ids: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if after:
                params["after"] = after
            body = self.api.request(
                "GET",
                f"/crm/v3/objects/{obj}/{quote(object_id, safe='')}/associations/{to_obj}",
                params=params,
                route="GET /crm/v3/objects/{t}/{id}/associations/{to}",
                shape=_objects,
            )
            page = _page(body)
            ids.extend(str(r.get("id")) for r in page.results)
            after = page.after
            if not after:
                return ids


# -- response shapes [API.md §1.4, §1.6; API.md, Associations]: checked inside the retry loop, so
# a proxy's or a broken API answer is retried, then raised, never read as an empty page.


def _results(body: Any, item: Callable[[Any], bool]) -> bool:
    if not isinstance(body, dict) or not isinstance(results := body.get("results"), list):
        return False
    paging = body.get("paging")
    return (paging is None or isinstance(paging, dict)) and all(item(r) for r in results)


def _objects(body: Any) -> bool:
    """``results`` of records (or owners), each with its id as text."""
    return _results(body, lambda r: isinstance(r, dict) and isinstance(r.get("id"), str))


def _one(body: Any) -> bool:
    """One record with its id as text."""
    return isinstance(body, dict) and isinstance(body.get("id"), str)


def _batch(body: Any) -> bool:
    """A batch write's answer: ``results`` (and, on a 207, ``errors``) of objects."""
    return _results(body, lambda r: isinstance(r, dict)) and isinstance(
        body.get("errors", []), list
    )


def _search(body: Any) -> bool:
    return _objects(body) and type(body.get("total")) is int


def _properties(body: Any) -> bool:
    return _results(body, lambda r: isinstance(r, dict) and isinstance(r.get("name"), str))


def _associations(body: Any) -> bool:
    """v4 batch read: ``results`` of ``{from: {id}, to: [{toObjectId, ...}]}``."""

    def item(r: Any) -> bool:
        return (
            isinstance(r, dict)
            and isinstance(r.get("from"), dict)
            and isinstance(to := r.get("to"), list)
            and all(isinstance(t, dict) and type(t.get("toObjectId")) is int for t in to)
        )

    return _results(body, item)
