"""The Zendesk Support client of the connector: :class:`ApiClient` + :class:`ZendeskPacer` +
credentials, under ``{account host}/api/v2`` [API.md §1.1].

Small typed methods, one per call the readers and the writer make, each passing ``route=`` as a
template (no ids in logs or errors). Links Zendesk returns (``next_page``, ``after_url``,
``links.next``) may name the account's canonical host rather than the one called
[API.md §1.1]: only their path and query are followed, on the configured host, so credentials
never go to a host the user did not name.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import NotFound
from ..http import Sleep, VendorClient
from ..pacing import Pacer
from .errors import RULES
from .pacing import ZendeskPacer

#: Incremental export pages hold up to 1,000 items [API.md §3.1].
EXPORT_MAX = 1000
#: Cursor-paginated list pages hold up to 100 [API.md §4.1].
PAGE_MAX = 100
#: ``show_many`` and ``update_many`` take up to 100 records [API.md §7.2].
BATCH_MAX = 100


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One incremental export page. Time-based: ``end_time`` and ``next_url``; cursor-based:
    ``after_cursor`` (a usable cursor even at the end of the stream) [API.md §3.2, §3.3]."""

    items: list[dict[str, Any]]
    end_of_stream: bool
    end_time: int | None = None
    next_url: str | None = None
    after_cursor: str | None = None
    side: dict[str, list[dict[str, Any]]] | None = None  # side-loads, e.g. metric_sets


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[dict[str, Any]]
    next_url: str | None


def _plural(path: str) -> str:
    """The item key of a list: the path's last segment (``/satisfaction_ratings``)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


class ZendeskClient(VendorClient):
    """Zendesk Support over one reused HTTP connection, paced by the account's headers."""

    vendor = "zendesk"
    errors = RULES
    headers = {"Accept": "application/json"}

    def __init__(self, credentials: Any, *, host: str, **client_kw: Any) -> None:
        """``host`` is the account's base (``https://acme.zendesk.com``); the other keywords
        are :class:`VendorClient`'s."""
        super().__init__(credentials, base_url=f"{host.rstrip('/')}/api/v2", **client_kw)

    def default_pacer(self, sleep: Sleep) -> Pacer:
        return ZendeskPacer(sleep=sleep)

    def _link(self, url: str) -> str:
        """A returned link's path and query, on the configured host."""
        parts = urllib.parse.urlsplit(url)
        return self.api.absolute(parts.path + (f"?{parts.query}" if parts.query else ""))

    # -- incremental exports --------------------------------------------------------------------

    def time_export(
        self,
        obj: str,
        *,
        start_time: int | None = None,
        next_url: str | None = None,
        include: str | None = None,
        per_page: int = EXPORT_MAX,
    ) -> ExportPage:
        """``GET /incremental/{obj}?start_time=`` (time-based), or its ``next_page``."""
        route = f"GET /incremental/{obj}"
        shape = _page_of(obj, end_of_stream=bool, end_time=(int, type(None)))
        if next_url is not None:
            body = self.api.request("GET", self._link(next_url), route=route, shape=shape)
        else:
            params: dict[str, Any] = {"start_time": int(start_time or 0), "per_page": per_page}
            if include:
                params["include"] = include
            body = self.api.request(
                "GET", f"/incremental/{obj}", params=params, route=route, shape=shape
            )
        body = body or {}
        end = body.get("end_time")
        return ExportPage(
            list(body.get(obj) or []),
            bool(body.get("end_of_stream")),
            end_time=int(end) if isinstance(end, int | float) else None,
            next_url=str(body["next_page"]) if body.get("next_page") else None,
        )

    def cursor_export(
        self,
        obj: str,
        *,
        start_time: int | None = None,
        cursor: str | None = None,
        include: str | None = None,
        per_page: int = EXPORT_MAX,
    ) -> ExportPage:
        """``GET /incremental/{obj}/cursor``: ``start_time`` on the first request, then
        ``cursor`` [API.md §3.3]."""
        params: dict[str, Any] = {"per_page": per_page}
        if cursor is not None:
            params["cursor"] = cursor
        else:
            params["start_time"] = int(start_time or 0)
        if include:
            params["include"] = include
        body = (
            self.api.request(
                "GET",
                f"/incremental/{obj}/cursor",
                params=params,
                route=f"GET /incremental/{obj}/cursor",
                shape=_page_of(obj, end_of_stream=bool, after_cursor=(str, type(None))),
            )
            or {}
        )
        side = {
            key: list(value)
            for key, value in body.items()
            if key != obj and isinstance(value, list)
        }
        after = body.get("after_cursor")
        return ExportPage(
            list(body.get(obj) or []),
            bool(body.get("end_of_stream")),
            after_cursor=str(after) if after else None,
            side=side or None,
        )

    # -- lists (cursor pagination) --------------------------------------------------------------

    def list_page(
        self, path: str, params: dict[str, Any] | None = None, *, next_url: str | None = None
    ) -> ListPage:
        """One page of a cursor-paginated list (``page[size]`` 100, ``links.next`` while
        ``meta.has_more``) [API.md §4.1]."""
        route = f"GET {path}"
        shape = _page_of(_plural(path), meta=dict)
        if next_url is not None:
            body = self.api.request("GET", self._link(next_url), route=route, shape=shape)
        else:
            query = {"page[size]": PAGE_MAX, **(params or {})}
            body = self.api.request("GET", path, params=query, route=route, shape=shape)
        body = body or {}
        more = bool((body.get("meta") or {}).get("has_more"))
        nxt = (body.get("links") or {}).get("next")
        return ListPage(list(body.get(_plural(path)) or []), str(nxt) if more and nxt else None)

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        page = self.list_page(path, params)
        while True:
            yield from page.items
            if page.next_url is None:
                return
            page = self.list_page(path, next_url=page.next_url)

    # -- organizations and their fields ---------------------------------------------------------

    def organization_fields(self) -> list[dict[str, Any]]:
        return list(self.list_all("/organization_fields"))

    def user_fields(self) -> list[dict[str, Any]]:
        return list(self.list_all("/user_fields"))

    def create_organization_field(self, field: dict[str, Any]) -> dict[str, Any]:
        """``POST /organization_fields``; a key already taken answers 422 RecordInvalid
        [API.md §6.3]."""
        body = self.api.request(
            "POST",
            "/organization_fields",
            json={"organization_field": field},
            route="POST /organization_fields",
            idempotent=True,
            shape=_holds("organization_field"),
        )
        return dict((body or {}).get("organization_field") or {})

    def show_organizations(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /organizations/show_many?ids=`` for up to 100 ids; unknown ids left out."""
        if len(ids) > BATCH_MAX:
            raise ValueError(f"at most {BATCH_MAX} ids per call, got {len(ids)}")
        body = self.api.request(
            "GET",
            "/organizations/show_many",
            params={"ids": ",".join(ids)},
            route="GET /organizations/show_many",
            shape=_page_of("organizations"),
        )
        return list((body or {}).get("organizations") or [])

    def update_organizations(self, organizations: list[dict[str, Any]]) -> dict[str, Any]:
        """``PUT /organizations/update_many`` with one object per organization (up to 100): an
        asynchronous job, returned as its ``job_status`` [API.md §7.2]. Absolute values, so
        idempotent."""
        body = self.api.request(
            "PUT",
            "/organizations/update_many",
            json={"organizations": organizations},
            route="PUT /organizations/update_many",
            shape=_holds("job_status"),
        )
        return dict((body or {}).get("job_status") or {})

    def job_status(self, job_id: str) -> dict[str, Any]:
        """``GET /job_statuses/{id}`` (kept one day) [API.md §7.3]."""
        body = self.api.request(
            "GET",
            f"/job_statuses/{urllib.parse.quote(job_id, safe='')}",
            route="GET /job_statuses/{id}",
            shape=_holds("job_status"),
        )
        return dict((body or {}).get("job_status") or {})

    # -- tickets (follow-ups) -------------------------------------------------------------------

    def create_ticket(self, ticket: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """``POST /tickets`` with an ``Idempotency-Key``: Zendesk answers a repeat within two
        hours with the first response instead of a second ticket [API.md §8.2], so the create
        is safe to retry."""
        body = self.api.request(
            "POST",
            "/tickets",
            json={"ticket": ticket},
            headers={"Idempotency-Key": idempotency_key},
            route="POST /tickets",
            idempotent=True,
            shape=_holds("ticket"),
        )
        return dict((body or {}).get("ticket") or {})

    def tickets_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        return list(self.list_all("/tickets", {"external_id": external_id}))

    def delete_ticket(self, ticket_id: str) -> bool:
        """``DELETE /tickets/{id}`` (a soft delete); False when it was gone already."""
        try:
            self.api.request(
                "DELETE",
                f"/tickets/{urllib.parse.quote(ticket_id, safe='')}",
                route="DELETE /tickets/{id}",
            )
        except NotFound:
            return False
        return True


def _page_of(key: str, **types: type | tuple[type, ...]) -> Callable[[Any], bool]:
    """Whether a body is a page as documented [API.md §3.3, §4.1]: ``key`` a list of objects
    with integer ids, and each of ``types`` present with its type."""

    def check(body: Any) -> bool:
        if not isinstance(body, dict) or not isinstance(items := body.get(key), list):
            return False
        return all(isinstance(i, dict) and type(i.get("id", 0)) is int for i in items) and all(
            isinstance(body.get(name), kind) for name, kind in types.items()
        )

    return check


def _holds(key: str) -> Callable[[Any], bool]:
    """Whether a body wraps one object under ``key`` (``{"ticket": {...}}``) [API.md §5]."""
    return lambda body: isinstance(body, dict) and isinstance(body.get(key), dict)
