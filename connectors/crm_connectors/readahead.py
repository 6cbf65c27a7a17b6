"""Read-ahead: fetch a listing's next page while the caller handles the current one.

A sync alternates between waiting on the API (the socket read releases the GIL) and work of its
own (parsing, converting, encrypting, writing). As soon as a page says where the next one starts,
:func:`read_ahead` asks for that page on a worker thread, so the wait and the work overlap. Calls
stay one at a time and in the same order as without read-ahead: it changes when a call is made,
never which calls are made, so pacing, quotas and call counts are untouched. The one extra call is
the page already asked for when a caller stops early (an error, a quota guard): it is waited for,
so the client is never closed under it, and its result is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

P = TypeVar("P")

# One worker for the process: fetches never wait on one another, so readers share it safely
# (a fetch must not itself use read_ahead, which would wait on its own worker).
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-read-ahead")


def read_ahead(
    first: Callable[[], P], following: Callable[[P], Callable[[], P] | None]
) -> Iterator[P]:
    """Pages from ``first()`` on: ``following(page)`` says how to fetch the next page (``None``
    after the last), and that fetch starts before ``page`` is handed to the caller. A fetch's
    exception is raised where the caller asks for that page."""
    pending: Future[P] | None = None
    try:
        page = first()
        while True:
            fetch = following(page)
            pending = _WORKER.submit(fetch) if fetch is not None else None
            yield page
            if pending is None:
                return
            page = pending.result()
            pending = None
    finally:
        if pending is not None and not pending.cancel():
            wait([pending])
