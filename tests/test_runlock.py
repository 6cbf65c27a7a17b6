"""One write-back at a time per store (target_health.runlock), on SQLite and PostgreSQL: a second
taker waits, or stops naming the holder; a holder killed with SIGKILL leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tapkit import PG_URL

from target_health.mapping import Row
from target_health.runlock import LOCK, StoreBusy, exclusive
from target_health.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'health.sqlite'}"
        return
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(exc).__name__})")
    yield PG_URL


def test_a_second_taker_stops_naming_the_holder_or_waits_for_it(url: str) -> None:
    first, second = open_store(url), open_store(url)
    try:
        # Given one store connection holding the write-back lock
        with exclusive(first, "target-health run r-1"):
            # then another may not take it: without waiting it stops, naming the holder
            with pytest.raises(StoreBusy) as busy, exclusive(second, "target-health apply", 0):
                pytest.fail("took a held lock")
            message = str(busy.value)
            assert "target-health run r-1 on " in message and f"(pid {os.getpid()})" in message
            assert "\n" not in message and "lock_wait_seconds" in message
            assert "target-health run r-1" in (second.lock_holder(LOCK) or "")
            # and waiting, it tries until the holder lets go (here: once the clock has moved)
            now = [0.0]
            waits: list[float] = []

            def sleep(seconds: float) -> None:
                waits.append(seconds)
                now[0] += seconds

            waiting = exclusive(second, "apply", 2.0, sleep=sleep, clock=lambda: now[0])
            with pytest.raises(StoreBusy), waiting:
                pytest.fail("took a held lock")
            assert sum(waits) == pytest.approx(2.0) and len(waits) >= 4
        # and once released, it is free: the next taker gets it at once
        with exclusive(second, "target-health apply", 0):
            assert "target-health apply" in (first.lock_holder(LOCK) or "")
        release = first.try_lock(LOCK, "x")
        assert release is not None
        release()
    finally:
        first.close()
        second.close()


HOLD = """
import sys, time
from target_health.runlock import exclusive
from target_health.store import open_store
with exclusive(open_store(sys.argv[1]), "target-health run killed"):
    print("held", flush=True)
    while True:
        time.sleep(0.1)
"""


def test_a_holder_killed_with_sigkill_leaves_the_lock_free(url: str) -> None:
    # Given another process holding the lock
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        store: Store = open_store(url)
        with pytest.raises(StoreBusy, match="target-health run killed"), exclusive(store, "a", 0):
            pass
        # when it is killed mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # then the lock is free for the next run (its stale record is replaced)
        with exclusive(store, "the next run", 5.0):
            assert "the next run" in (store.lock_holder(LOCK) or "")
        store.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_store_write_postgresql_breaks_off_in_a_deadlock_is_retried(tmp_path: Path) -> None:
    try:
        other = psycopg.connect(PG_URL, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(exc).__name__})")
    store = open_store(PG_URL)
    tag = uuid.uuid4().hex
    keys = [f"deadlock-{tag}-1", f"deadlock-{tag}-2"]

    def rows(modified: str) -> list[Row]:
        return [Row("account", {"key": k, "crm": "test", "modified": modified}) for k in keys]

    store.write(rows("2026-01-01T00:00:00Z"))
    done: list[BaseException | None] = []
    try:
        # Given another transaction holding the second record's row
        other.execute(
            "SELECT 1 FROM records WHERE entity = 'account' AND key = %s FOR UPDATE", (keys[1],)
        )

        # when a store write takes the first record's row and waits for the second
        def write() -> None:
            try:
                store.write(rows("2026-02-01T00:00:00Z"))
                done.append(None)
            except BaseException as exc:
                done.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        # (watched from a connection of its own: inside a transaction the activity view is
        # one snapshot)
        deadline = time.monotonic() + 30
        with psycopg.connect(PG_URL, autocommit=True) as watch:
            while (
                time.monotonic() < deadline
                and not watch.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'INSERT INTO records%'"
                ).fetchall()
            ):
                time.sleep(0.02)
        # and the other transaction then asks for the first row: a deadlock, which PostgreSQL
        # resolves by breaking off the write (it waited first)
        other.execute(
            "SELECT 1 FROM records WHERE entity = 'account' AND key = %s FOR UPDATE", (keys[0],)
        )
        other.commit()
        writer.join(60)
    finally:
        other.close()
    # then the write was run again and stored both records, with no error
    assert done == [None], done
    got = store.query(
        "SELECT modified FROM records WHERE entity = 'account' AND key IN ({p}, {p})", tuple(keys)
    )
    assert sorted(m for (m,) in got) == ["2026-02-01T00:00:00Z"] * 2
    with store.transaction() as tx:
        tx.execute("DELETE FROM records WHERE key IN (%s, %s)", tuple(keys))
    store.close()
