"""A guard for paging loops.

A server that hands back a page cursor it gave before (a look-alike API, a proxy dropping the
cursor parameter, a vendor bug) would have a read fetch the same pages forever, re-emitting their
records. Each paging loop passes every cursor it is about to follow through one
:class:`Progress`; a cursor seen before in the same read stops it with a :class:`FatalError`
naming the call, and the run reports that CRM as failed instead of looping.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from .errors import FatalError

_C = TypeVar("_C", bound=Hashable)


class Progress:
    """The cursors one read has followed (one string per page: little memory)."""

    def __init__(self, vendor: str, route: str, first: Hashable | None = None) -> None:
        self.vendor = vendor
        self.route = route
        self._seen: set[Hashable] = set() if first is None else {first}

    def __call__(self, cursor: _C) -> _C:
        """``cursor``, after checking it is new to this read."""
        if cursor in self._seen:
            raise FatalError(
                "the server gave a page cursor it had already given in this read: the read"
                " stops rather than fetch the same pages again",
                vendor=self.vendor,
                route=self.route,
            )
        self._seen.add(cursor)
        return cursor
