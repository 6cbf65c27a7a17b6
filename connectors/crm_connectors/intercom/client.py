"""The Intercom 2.14 client of the connector: :class:`ApiClient` + :class:`IntercomPacer` + a
static access token, with ``Intercom-Version: 2.14`` on every call [API.md §3.1].

Small typed methods, one per call the readers make, each passing ``route=`` as a template so
logs and errors hold no ids. Search POSTs are reads and are retried as idempotent. Scroll pages
are *not* idempotent: a scroll page that failed after the server handled it has moved the
scroll on, so retrying the same ``scroll_param`` would skip a page; :meth:`scroll_page` sends
them with ``idempotent=False`` and the companies reader decides what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import NotFound
from ..http import Sleep, VendorClient
from ..pacing import Pacer
from .errors import RULES
from .pacing import IntercomPacer

#: The real API host (US region) [API.md §3.0]; tests pass the sandbox's URL.
DEFAULT_BASE_URL = "https://api.intercom.io"
#: The API version this connector is written against [API.md §3.1].
VERSION = "2.14"
#: Search and list pages hold at most 150 records [API.md §3.2, §3.4].
PER_PAGE_MAX = 150
#: Data attribute models with custom attributes on the objects we read [API.md §3.6].
MODELS = ("contact", "company", "conversation")


@dataclass(frozen=True, slots=True)
class Page:
    """One search page: its records and the next body cursor (None on the last page, which has
    no ``pages.next`` [API.md §3.2])."""

    results: list[dict[str, Any]]
    starting_after: str | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ScrollPage:
    """One ``GET /companies/scroll`` page; empty ``results`` means the end [API.md §3.2]."""

    results: list[dict[str, Any]]
    scroll_param: str | None


def _next_cursor(body: dict[str, Any]) -> str | None:
    nxt = (body.get("pages") or {}).get("next") or {}
    cursor = nxt.get("starting_after") if isinstance(nxt, dict) else None
    return str(cursor) if cursor else None


def _list_of(
    key: str, id_type: type = str, **types: type | tuple[type, ...]
) -> Callable[[Any], bool]:
    """Whether a body is the documented list [API.md §3.2]: ``key`` a list of objects whose ``id``
    (where present) is of ``id_type`` (text, but a data attribute's is a number), and each of
    ``types``, where present, of its type. A page of the wrong shape is retried like a dropped
    connection, never read as an empty page."""

    def check(body: Any) -> bool:
        if not isinstance(body, dict) or not isinstance(items := body.get(key), list):
            return False
        return all(
            isinstance(i, dict) and ("id" not in i or type(i["id"]) is id_type) for i in items
        ) and all(
            body.get(name) is None or isinstance(body[name], kind) for name, kind in types.items()
        )

    return check


_SEARCH = {
    "contacts": _list_of("data", total_count=int, pages=dict),
    "conversations": _list_of("conversations", total_count=int, pages=dict),
}
_SCROLL = _list_of("data", scroll_param=str)
_ADMINS = _list_of("admins")
_TAGS = _list_of("data")
_DATA_ATTRIBUTES = _list_of("data", int)


def _object(body: Any) -> bool:
    """One object with its ``id`` as text (``GET /companies/{id}``)."""
    return isinstance(body, dict) and isinstance(body.get("id"), str)


class IntercomClient(VendorClient):
    """Intercom over one reused HTTP connection, paced by ``X-RateLimit-*``."""

    vendor = "intercom"
    errors = RULES

    default_base_url = DEFAULT_BASE_URL
    headers = {"Intercom-Version": VERSION}

    def default_pacer(self, sleep: Sleep) -> Pacer:
        return IntercomPacer(sleep=sleep)

    # -- search ---------------------------------------------------------------------------------

    def search_page(
        self,
        obj: str,
        query: dict[str, Any],
        *,
        starting_after: str | None = None,
        per_page: int = PER_PAGE_MAX,
        sort: dict[str, str] | None = None,
    ) -> Page:
        """``POST /{contacts|conversations}/search``. The cursor goes in the body's
        ``pagination``; in the query string it is ignored and page 1 comes back
        [API.md §3.2]."""
        if obj not in ("contacts", "conversations"):
            raise ValueError(f"Intercom has no search for {obj!r}")
        pagination: dict[str, Any] = {"per_page": min(per_page, PER_PAGE_MAX)}
        if starting_after:
            pagination["starting_after"] = starting_after
        body: dict[str, Any] = {"query": query, "pagination": pagination}
        if sort:
            body["sort"] = sort
        reply = self.api.request(
            "POST",
            f"/{obj}/search",
            json=body,
            route=f"POST /{obj}/search",
            idempotent=True,
            shape=_SEARCH[obj],
        )
        key = "conversations" if obj == "conversations" else "data"
        total = reply.get("total_count")
        return Page(
            list(reply.get(key) or []),
            _next_cursor(reply),
            int(total) if isinstance(total, int) else None,
        )

    # -- companies ------------------------------------------------------------------------------

    def scroll_page(self, scroll_param: str | None = None) -> ScrollPage:
        """``GET /companies/scroll``: without a param it opens the app's one scroll (400
        ``scroll_exists`` while another is open), with one it returns the next page (404 once
        the param expired, after 1 minute idle) [API.md §3.2]. Not retried on server or
        network errors (see the module doc); throttles are, as Intercom rejects them unread."""
        params = {"scroll_param": scroll_param} if scroll_param else None
        reply = self.api.request(
            "GET",
            "/companies/scroll",
            params=params,
            route="GET /companies/scroll",
            idempotent=False,
            shape=_SCROLL,
        )
        param = reply.get("scroll_param")
        return ScrollPage(list(reply.get("data") or []), str(param) if param else None)

    # -- full tables ----------------------------------------------------------------------------

    def admins(self) -> list[dict[str, Any]]:
        """``GET /admins``: every teammate, one unpaginated ``admin.list``."""
        reply = self.api.request("GET", "/admins", route="GET /admins", shape=_ADMINS)
        return list(reply["admins"])

    def tags(self) -> list[dict[str, Any]]:
        """``GET /tags``: every tag of the workspace, one unpaginated list."""
        reply = self.api.request("GET", "/tags", route="GET /tags", shape=_TAGS)
        return list(reply["data"])

    def data_attributes(self, model: str) -> list[dict[str, Any]]:
        """``GET /data_attributes?model=…``: live (non-archived) attributes of one model, built-in
        and custom, with their ``data_type`` [API.md §3.6]."""
        if model not in MODELS:
            raise ValueError(f"unknown data attribute model {model!r}")
        reply = self.api.request(
            "GET",
            "/data_attributes",
            params={"model": model},
            route="GET /data_attributes",
            shape=_DATA_ATTRIBUTES,
        )
        return list(reply["data"])

    # -- writes ---------------------------------------------------------------------------------

    def all_data_attributes(self, model: str) -> list[dict[str, Any]]:
        """``GET /data_attributes?model=…&include_archived=true``: archived ones too."""
        reply = self.api.request(
            "GET",
            "/data_attributes",
            params={"model": model, "include_archived": "true"},
            route="GET /data_attributes",
            shape=_DATA_ATTRIBUTES,
        )
        return list(reply["data"])

    def create_data_attribute(self, definition: dict[str, Any]) -> None:
        """``POST /data_attributes``; a repeat answers 400 ``parameter_invalid`` ("You already
        have ...") [API.md §3.6]."""
        self.api.request(
            "POST",
            "/data_attributes",
            json=definition,
            route="POST /data_attributes",
            idempotent=True,
        )

    def update_data_attribute(self, attribute_id: str, changes: dict[str, Any]) -> None:
        """``PUT /data_attributes/{id}`` (e.g. ``{"archived": false}`` restores one)."""
        self.api.request(
            "PUT",
            f"/data_attributes/{quote(attribute_id, safe='')}",
            json=changes,
            route="PUT /data_attributes/{id}",
        )

    def company(self, company_id: str) -> dict[str, Any] | None:
        """``GET /companies/{id}`` (Intercom's ``id``, not ``company_id``); None when gone."""
        try:
            reply = self.api.request(
                "GET",
                f"/companies/{quote(company_id, safe='')}",
                route="GET /companies/{id}",
                shape=_object,
            )
        except NotFound:
            return None
        return dict(reply)

    def update_company(self, company_id: str, changes: dict[str, Any]) -> None:
        """``PUT /companies/{id}``: absolute values, so idempotent (one company per call:
        Intercom has no batch writes [API.md §3.3])."""
        self.api.request(
            "PUT",
            f"/companies/{quote(company_id, safe='')}",
            json=changes,
            route="PUT /companies/{id}",
        )

    def tag_companies(self, name: str, companies: list[dict[str, Any]]) -> dict[str, Any]:
        """``POST /tags`` with ``companies``: find-or-create the tag by name, then tag (or, with
        ``untag: true``, untag) them; idempotent [API.md §3.2]."""
        reply = self.api.request(
            "POST",
            "/tags",
            json={"name": name, "companies": companies},
            route="POST /tags",
            idempotent=True,
            shape=_object,
        )
        return dict(reply)
