"""target-health's guard on its input, and the checks at the boundary that keep the store true.

Malformed Singer input (tests/singer_corpus.py: 45 kinds of bad line, each cut into a good stream
at 5 places) ends the run with one line naming the input line and what is wrong, never the
line's content; the records before it are stored and the last STATE before it is forwarded, so
a rerun from that state loses nothing. Records whose keys or times cannot be true are
quarantined with a pointer and a reason, and the store compares modification times as times.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from singer_corpus import CANARY, LINE_FAULTS, Case, corpus, encode, good_messages
from tapkit import fresh_store, postgres_answers

from target_health.exits import Exit
from target_health.mapping import Row
from target_health.store import STORE_VERSION, open_store
from target_health.target import TargetHealth


@dataclass
class Outcome:
    code: int
    message: str
    states: list[dict[str, Any]]
    counts: dict[str, Any]
    status: str
    logs: str


def run_in_process(workdir: Path, lines: list[bytes], **config: Any) -> Outcome:
    """target-health over ``lines`` in this process (what ``main`` does, without the exit)."""
    url = f"sqlite:///{workdir / 'health.sqlite'}"
    target = TargetHealth(config={"database_url": url, "as_of": "2026-11-01", **config})
    out, logs = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(logs)
    logging.getLogger().addHandler(handler)
    try:
        with redirect_stdout(out):
            try:
                target.listen(io.BytesIO(b"".join(lines)))  # type: ignore[arg-type]
                code, message = 0, ""
            except Exit as exc:
                code, message = exc.code, str(exc)
    finally:
        logging.getLogger().removeHandler(handler)
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    ((status, counts),) = open_store(url).query(
        "SELECT status, counts FROM runs WHERE run_id = {p}", (target.run_id,)
    )
    return Outcome(code, message, states, json.loads(counts), status, logs.getvalue())


def run_process(workdir: Path, lines: list[bytes], **config: Any) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"database_url": f"sqlite:///{workdir / 'health.sqlite'}", "as_of": "2026-11-01",
              **config}  # fmt: skip
    (workdir / "config.json").write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "target_health.target", "--config", str(workdir / "config.json")],
        input=b"".join(lines),
        capture_output=True,
        timeout=120,
        check=False,
    )


CASES = list(corpus())


def test_the_corpus_is_what_the_reliability_bar_asks_for() -> None:
    assert len(LINE_FAULTS) >= 45 and len(CASES) >= 200
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_line_stops_the_run_cleanly_and_loses_nothing_before_it(
    case: Case, tmp_path: Path
) -> None:
    # When target-health reads good input with one bad line in it
    done = run_in_process(tmp_path, case.lines)
    # then the run fails with one line naming the input line, never quoting it
    assert done.code == 1 and done.status == "failed", (done.code, done.message)
    assert done.message.startswith(f"input line {case.line}: "), done.message
    assert "\n" not in done.message and len(done.message) < 200
    assert CANARY not in done.message and CANARY not in done.logs
    assert "Traceback" not in done.logs
    # and every record before it was kept (stored or, for the unmapped stream, counted)
    before = case.records_before()
    counts = done.counts
    assert counts["received"] == before
    assert counts["received"] == counts["stored"] + counts["quarantined"] + counts["ignored"]
    assert counts["quarantined"] == 0 and counts["input_error"] == done.message
    # and the state forwarded is the last one before the bad line: a rerun from it loses nothing
    assert (done.states[-1] if done.states else None) == case.last_state_before()
    assert "measured" not in counts and "writeback" not in counts  # nothing used partial input


@pytest.mark.parametrize(
    "fault", ["truncated", "record before schema", "schema not a json schema", "batch files gone",
              "type unknown", "invalid utf-8"]
)  # fmt: skip
def test_as_a_process_a_bad_line_is_one_line_and_exit_1(fault: str, tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.name.startswith(f"{fault} @") and c.line == 9]
    done = run_process(tmp_path, case.lines)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr and CANARY not in stderr
    assert stderr.strip().splitlines()[-1].endswith(f"target-health: {_message(tmp_path)}")
    assert _message(tmp_path).startswith("input line 9: ")
    # what it stored before the fault: the 5 records of lines 4-8
    assert json.loads(done.stdout.decode().splitlines()[-1]) == case.last_state_before()


def _message(workdir: Path) -> str:
    ((counts,),) = open_store(f"sqlite:///{workdir / 'health.sqlite'}").query(
        "SELECT counts FROM runs"
    )
    return str(json.loads(counts)["input_error"])


def test_good_input_runs_and_every_record_is_counted_once(tmp_path: Path) -> None:
    done = run_process(tmp_path, encode(good_messages()))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    ((counts,),) = store.query("SELECT counts FROM runs")
    summary = json.loads(counts)
    assert (summary["received"], summary["stored"], summary["ignored"]) == (24, 16, 8)
    assert summary["streams"]["not_a_crm_stream"]["ignored"] == {"no mapping for this stream": 8}
    assert summary["unmapped_streams"] == ["not_a_crm_stream"]


# -- records whose keys or times cannot be true ---------------------------------------------------


def _company(rid: Any, modified: Any, name: str = "Acme") -> dict[str, Any]:
    return {"type": "RECORD", "stream": "hubspot_companies",
            "record": {"id": rid, "name": name, "hs_lastmodifieddate": modified}}  # fmt: skip


def _with_schema(*records: dict[str, Any]) -> list[bytes]:
    return encode([good_messages()[0], *records])


@pytest.mark.parametrize(
    ("rid", "modified", "pointer", "reason"),
    [
        ("1", "zzz-not-a-date", "/hs_lastmodifieddate", "format: expected a date-time from"),
        ("1", "9999-12-31T00:00:00Z", "/hs_lastmodifieddate", "format: expected a date-time"),
        ("1", "1969-07-20T20:17:00Z", "/hs_lastmodifieddate", "format: expected a date-time"),
        ("1", "2027-06-01T00:00:00Z", "/account/modified", "last modified after the run's clock"),
        ("1", "1700000000000", "/hs_lastmodifieddate", "format: expected a date-time"),
        ("", "2026-10-01T00:00:00Z", "/id", "key property empty"),
        ("   ", "2026-10-01T00:00:00Z", "/id", "key property empty"),
        ("a\x00b", "2026-10-01T00:00:00Z", "/id", "key property holds a control character"),
        ("a\nb", "2026-10-01T00:00:00Z", "/id", "key property holds a control character"),
    ],
)
def test_a_record_with_an_impossible_key_or_time_is_quarantined(
    rid: str, modified: str, pointer: str, reason: str, tmp_path: Path
) -> None:
    done = run_in_process(tmp_path, _with_schema(_company(rid, modified)), max_invalid_share=1)
    assert done.code == 0, done.message
    assert (done.counts["received"], done.counts["quarantined"]) == (1, 1)
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    ((stream, key, where, why),) = store.query(
        "SELECT stream, record_key, pointer, reason FROM quarantine"
    )
    assert (stream, where) == ("hubspot_companies", pointer) and why.startswith(reason)
    assert "\x00" not in key and "\n" not in key
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]


def test_an_impossible_time_no_longer_pins_a_record(tmp_path: Path) -> None:
    # Given a record stored, then a version of it whose modification time is a placeholder
    first = _company("1", "2026-10-01T00:00:00.000Z", "First")
    poisoned = _company("1", "9999-12-31T23:59:59Z", "Poisoned")
    later = _company("1", "2026-10-02T00:00:00.000Z", "Later")
    run_in_process(tmp_path, _with_schema(first, poisoned), max_invalid_share=1)
    # when the record's real next version arrives
    done = run_in_process(tmp_path, _with_schema(later))
    # then it is stored: the placeholder was quarantined, not kept as the newest version
    assert done.code == 0
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    (data,) = store.query("SELECT data FROM records WHERE key = 'hubspot:companies:1'")[0]
    assert json.loads(data)["name"] == "Later"


def test_the_store_compares_modification_times_as_times(store_url: str) -> None:
    store = open_store(store_url)

    def row(modified: str, name: str) -> Row:
        return Row("account", {"key": "hubspot:companies:1", "crm": "hubspot", "deleted": False,
                               "modified": modified, "name": name})  # fmt: skip

    # 08:00Z written as 10:00+02:00 sorts after 09:00Z as text, and is earlier as a time
    store.write([row("2026-10-01T10:00:00+02:00", "at 08:00Z")])
    store.write([row("2026-10-01T09:00:00Z", "at 09:00Z")])
    store.write([row("2026-10-01T08:30:00.000Z", "at 08:30Z, late")])  # older: changes nothing
    (data,) = store.query("SELECT data FROM records")[0]
    assert json.loads(data)["name"] == "at 09:00Z"


def test_a_store_made_before_modified_ms_is_migrated_and_unpinned(tmp_path: Path) -> None:
    import sqlite3

    # Given a store of the earlier schema, whose row holds a placeholder time as text
    path = tmp_path / "health.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE records (entity TEXT NOT NULL, key TEXT NOT NULL, crm TEXT NOT NULL,"
        " account_ref TEXT, contact_ref TEXT, token TEXT, deleted INTEGER NOT NULL,"
        " modified TEXT, data TEXT NOT NULL, PRIMARY KEY (entity, key))"
    )
    conn.execute(
        "INSERT INTO records VALUES ('account', 'hubspot:companies:1', 'hubspot', NULL, NULL,"
        " NULL, 0, 'zzz-not-a-date', '{\"name\": \"Pinned\"}')"
    )
    conn.commit()
    conn.close()
    # when this version opens it and a real update arrives
    done = run_in_process(tmp_path, _with_schema(_company("1", "2026-10-02T00:00:00Z", "Real")))
    assert done.code == 0
    # then the update replaced the pinned row
    store = open_store(f"sqlite:///{path}")
    (data,) = store.query("SELECT data FROM records")[0]
    assert json.loads(data)["name"] == "Real"
    # and the store is at this version, which a second opening leaves as it is
    assert store.query("SELECT value FROM store_meta") == [(str(STORE_VERSION),)]
    store.close()
    assert open_store(f"sqlite:///{path}").query("SELECT value FROM store_meta") == [
        (str(STORE_VERSION),)
    ]


def test_a_nul_in_a_key_is_quarantined_on_postgresql_too(tmp_path: Path) -> None:
    if why := postgres_answers():
        pytest.skip(why)
    with fresh_store("postgresql", tmp_path) as url:
        _nul_key_quarantined(url)


def _nul_key_quarantined(url: str) -> None:
    target = TargetHealth(config={"database_url": url, "max_invalid_share": 1})
    lines = _with_schema(_company("a\x00b", "2026-10-01T00:00:00Z"))
    with redirect_stdout(io.StringIO()):
        target.listen(io.BytesIO(b"".join(lines)))  # type: ignore[arg-type]
    store = open_store(url)
    assert store.query("SELECT record_key, pointer FROM quarantine") == [("a\\x00b", "/id")]


#: Texts around the edges of the quick checks of the common time shapes (validate.TimeBounds):
#: bounds, impossible days and hours, digits, other offsets and fraction lengths, non-times.
EDGE_TIMES = [
    "2025-03-04T05:06:07.123Z", "1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z",
    "9999-12-31T00:00:00.000Z", "2025-02-30T00:00:00.000Z", "2025-03-04", "1970-01-01",
    "1969-12-31", "2036-12-01", "2036-12-11", "2036-11-30", "1234567890", "2025-13-01",
    "2025-03-04T05:06:07.000+0000", "2025-03-04T25:06:07.000+0000", "zzz-not-a-date",
    "2025-03-04T05:06:07Z", "2025-03-04T05:06:07.12345Z", "2025-03-04T05:06:07.123+0100",
    "abcd-ef-ghTij:kl:mn.opqZ", "2025-03-04X05:06:07.123Z", "123456789012345678901234",
]  # fmt: skip


def test_the_quick_time_checks_agree_with_parsing_every_time() -> None:
    # Given the bounds of a run on 2026-12-03 and no bounds at all, and 20,000 random times in
    # each common shape besides the edge cases
    import datetime as dt
    import random

    from crm_connectors.timefmt import ms_to_iso
    from target_health.validate import ANY_TIME, TimeBounds

    run = TimeBounds.around(
        dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc), dt.date(1970, 1, 1), 3660
    )
    rnd = random.Random(7)
    stamps = [ms_to_iso(rnd.randrange(-6 * 10**13, 25 * 10**13)) for _ in range(20_000)]
    texts = EDGE_TIMES + stamps + [s[:10] for s in stamps] + [s[:23] + "+0000" for s in stamps]
    for bounds in (run, ANY_TIME):
        # when each is checked as a date-time
        check = bounds.checks()["date-time"]
        # then the answer is the one parsing to epoch ms gives
        wrong = [t for t in texts if check(t) != (not t.isdigit() and bounds.ms(t) is not None)]
        assert not wrong, wrong[:10]
    # (and the edges do fall on both sides)
    verdicts = {t: run.checks()["date"](t) for t in EDGE_TIMES}
    assert (
        verdicts["1970-01-01"]
        and not verdicts["1969-12-31"]
        and not verdicts["2025-02-30T00:00:00.000Z"]
    )
    assert verdicts["2036-11-30"] and not verdicts["2036-12-11"] and not verdicts["1234567890"]
