"""One measurement and write-back at a time per store.

Planning reads the CRMs' current values and applying writes the differences: two runs doing it
at once would both plan the same changes and send every write twice (and could each start the
same follow-up). So a run's measurement (what its plan is made from), setup, plan, apply and
retention programs, and the ``apply``, ``rollback``, ``approve``, ``reject`` and ``forget``
commands, hold the store's write-back lock (Store.try_lock: a PostgreSQL advisory lock, or an OS
lock on a file beside the SQLite database). A crash releases it. A second run waits up to
``writeback.lock_wait_seconds`` (default 600), then stops with a message naming the holder;
waiting, it then plans from the values the first one wrote, so it writes only what is still
different. A run without write-back holds it while it measures, so two runs never rewrite one
snapshot at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .store import Store

LOCK = "writeback"
DEFAULT_WAIT_SECONDS = 600.0
#: Seconds between two tries while another run holds the lock.
POLL_SECONDS = 0.5


class StoreBusy(Exception):
    """Another run holds the store's write-back lock for longer than this one may wait."""


def wait_seconds(config: Mapping[str, Any]) -> float:
    given = (config.get("writeback") or {}).get("lock_wait_seconds")
    return DEFAULT_WAIT_SECONDS if given is None else max(0.0, float(given))


def _holder(label: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    return json.dumps({"run": label, "host": socket.gethostname(), "pid": os.getpid(),
                       "since": now.replace("+00:00", "Z")})  # fmt: skip


def describe(holder: str | None) -> str:
    """The holder's record in words (it is ours: run, host, pid and start)."""
    try:
        h = json.loads(holder or "")
        return f"{h['run']} on {h['host']} (pid {h['pid']}) since {h['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def exclusive(
    store: Store,
    label: str,
    wait: float = DEFAULT_WAIT_SECONDS,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the store's write-back lock as ``label`` (a run id or a command) for the block."""
    deadline = clock() + wait
    while (release := store.try_lock(LOCK, _holder(label))) is None:
        left = deadline - clock()
        if left <= 0:
            raise StoreBusy(
                f"another write-back holds this store: {describe(store.lock_holder(LOCK))};"
                f" waited {wait:g} s (writeback.lock_wait_seconds)"
            )
        sleep(min(POLL_SECONDS, left))
    try:
        yield
    finally:
        release()
