"""tap-crm survives what production CRMs and hosts do to it.

Given the sandbox over real HTTP and the tap as a real process, then:

- a sync through about 20% failing API calls (throttles, 5xx, dropped and truncated responses,
  expired tokens) emits exactly the records of a clean sync;
- a ``kill -9`` in the middle of a large stream loses nothing: a rerun from the last STATE the
  tap delivered emits every record, and re-reads only what came after that STATE;
- more than 10,000 HubSpot contacts on one modification millisecond (beyond the search API's
  10,000-result cap) are all synced, once, also when the tap is killed inside that block.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tapkit import Ids, TapRun, discover, run_tap, select, start_tap, tap_config

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.store import ARCHIVED, LIVE
from crm_connectors.sandbox.world import WorldSpec
from crm_connectors.timefmt import iso_to_ms, ms_to_iso
from tap_crm.streams import DELETED_AT, CrmStream

Message = dict[str, Any]
#: Records by stream, then by primary key ("a:b" for compound keys).
Keyed = dict[str, dict[str, dict[str, Any]]]

#: Plain-text PII so that two runs' records compare equal (encryption is randomized), and
#: HubSpot search unpaced (the sandbox's rate limits are off; the default 5/s is HubSpot's).
FAST: dict[str, Any] = {"pii_default_mode": "keep", "hubspot_search_requests_per_second": 1000}
#: The tap's STATE cadence: a kill -9 loses at most this many records' progress per stream.
EVERY = CrmStream.STATE_MSG_FREQUENCY


def _config(sandbox: Sandbox) -> dict[str, Any]:
    return tap_config(sandbox, **FAST)


def _keyed(messages: list[Message]) -> Keyed:
    """RECORD data by stream and key; fails when a key is emitted twice with different data."""
    keys: dict[str, list[str]] = {}
    out: Keyed = {}
    for m in messages:
        if m["type"] == "SCHEMA":
            keys[m["stream"]] = list(m["key_properties"])
        elif m["type"] == "RECORD":
            rec = m["record"]
            key = ":".join(str(rec[k]) for k in keys[m["stream"]])
            seen = out.setdefault(m["stream"], {})
            assert seen.get(key, rec) == rec, f"{m['stream']} {key} emitted with different data"
            seen[key] = rec
    return out


def _once(run: TapRun) -> Keyed:
    """``run``'s records by stream and key, after checking that no key was emitted twice."""
    for stream, counts in Ids().add(run).seen.items():
        repeated = [k for k, n in counts.items() if n > 1]
        assert not repeated, f"{stream}: {len(repeated)} record(s) emitted more than once"
    return _keyed(run.messages)


def _ok(run: TapRun) -> TapRun:
    assert run.returncode == 0, run.stderr[-3000:]
    return run


# -- 1. faults ----------------------------------------------------------------------------------

#: About one API call in five fails. Each probabilistic fault is drawn in turn for a request and
#: the first that fires decides, so these four fail 1 - 0.95**4 = 18.5% of calls (token
#: endpoints included). Expired tokens come on top for the two OAuth CRMs' API routes (an
#: unauthenticated route ignores the fault), every 25th call (4%): access tokens expire on a
#: schedule, and the client renews a rejected token once per call by design, so a token
#: rejected again right after its refresh is a real auth failure (random expiries at 4% do that
#: to about one sync in six). Intercom has only static tokens, for which a 401 is final. The
#: throttle asks for 0.05 s, but the emulators send Retry-After in whole seconds, at least 1.
FAULTS: list[dict[str, Any]] = [
    {"kind": "expired_token", "vendor": "hubspot", "path": "/crm/*", "every": 25},
    {"kind": "expired_token", "vendor": "salesforce", "path": "/services/data/*", "every": 25},
    {"kind": "rate_limit", "probability": 0.05, "retry_after": 0.05},
    {"kind": "server_error", "probability": 0.05},
    {"kind": "drop", "probability": 0.05},
    {"kind": "truncate", "probability": 0.05},
]


def test_a_sync_through_20_percent_faults_emits_exactly_the_clean_records(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given the three CRMs, Salesforce serving 200-record query pages (so its streams page too),
    # and HubSpot connected through OAuth (its private-app token cannot be renewed)
    sandbox = make_sandbox(
        size=150, fault_seed=11, options={"salesforce": {"query_batch_max": 200}}
    )
    hubspot = DEFAULT_CREDENTIALS["hubspot"]
    config = {k: v for k, v in _config(sandbox).items() if k != "hubspot_access_token"} | {
        "hubspot_client_id": hubspot["client_id"],
        "hubspot_client_secret": hubspot["client_secret"],
        "hubspot_refresh_token": hubspot["refresh_token"],
    }
    admin = sandbox.urls["admin"] + "/_sandbox"
    # and a clean sync of everything
    clean = _once(_ok(run_tap(tmp_path / "clean", config)))
    clean_calls = httpx.get(f"{admin}/stats").json()["total"]
    # when about 20% of API calls start failing
    httpx.post(f"{admin}/stats/reset").raise_for_status()
    httpx.post(f"{admin}/faults", json=FAULTS).raise_for_status()
    # and the tap syncs again from scratch
    faulty = _once(_ok(run_tap(tmp_path / "faulty", config)))
    # then every stream holds the very same records, each once
    assert sorted(faulty) == sorted(clean)
    for stream, records in clean.items():
        assert faulty[stream].keys() == records.keys(), stream
        changed = [k for k, rec in records.items() if faulty[stream][k] != rec]
        assert not changed, f"{stream}: {len(changed)} record(s) differ from the clean sync"
    # and the faults did fire, on about a fifth of the calls, of every kind
    stats = httpx.get(f"{admin}/stats").json()
    fired = {vendor: sum(v["faults"].values()) for vendor, v in stats["vendors"].items()}
    kinds: Counter[str] = Counter()
    for v in stats["vendors"].values():
        kinds.update(v["faults"])
    assert 0.12 <= sum(fired.values()) / stats["total"] <= 0.35, (fired, stats["total"])
    assert set(kinds) == {f["kind"] for f in FAULTS}, kinds
    # and each failed call was made again
    assert stats["total"] >= clean_calls + sum(fired.values()), (stats["total"], clean_calls)


# -- 2. kill -9 ---------------------------------------------------------------------------------


class Output:
    """What a target would have received from a tap killed with SIGKILL: every complete line."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.counts: Counter[str] = Counter()
        self.state: dict[str, Any] | None = None
        #: Records delivered after the last STATE, per stream (the rerun must read them again).
        self.after_state: Counter[str] = Counter()

    def add(self, line: str) -> Message:
        m: Message = json.loads(line)
        self.messages.append(m)
        if m["type"] == "RECORD":
            self.counts[m["stream"]] += 1
            self.after_state[m["stream"]] += 1
        elif m["type"] == "STATE":
            self.state = m["value"]
            self.after_state.clear()
        return m


def kill_when(proc: subprocess.Popen[str], due: Callable[[Output, Message], bool]) -> Output:
    """Read the tap's stdout until ``due`` says so, SIGKILL the tap, then take in what it had
    already written to the pipe (a target would get that too), less a line cut short."""
    assert proc.stdout is not None
    out = Output()
    for line in proc.stdout:
        if due(out, out.add(line)):
            break
    else:
        pytest.fail(f"the tap ended before the kill point: {out.counts}")
    proc.kill()
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    proc.stdout.close()
    *complete, _cut = rest.split("\n")  # the last piece is "" or a line the kill cut short
    for line in complete:
        if line.strip():
            out.add(line)
    assert proc.returncode == -signal.SIGKILL, "the tap was not running when it was killed"
    return out


def _past_state(stream: str, extra: int) -> Callable[[Output, Message], bool]:
    """Due ``extra`` records of ``stream`` after a STATE that bookmarks it mid-stream."""
    mark: dict[str, int] = {}

    def due(out: Output, m: Message) -> bool:
        if "at" not in mark and m["type"] == "STATE" and out.counts[stream] >= EVERY:
            mark["at"] = out.counts[stream]
        return "at" in mark and out.counts[stream] >= mark["at"] + extra

    return due


LIST_PAGE = 100  # HubSpot's list page


def _repeats_allowed(vendor: str, records: dict[str, dict[str, Any]], state: Any) -> int:
    """How many of a stream's ``records`` a read resumed from ``state`` (the stream's STATE)
    may emit again besides those delivered after that STATE (crm_connectors.base): HubSpot and
    Salesforce resume strictly after the last (modified, id), but HubSpot lists the archived
    records archived at or after the watermark again (its archived pass comes first, from the
    starting watermark); a HubSpot first sync stopped inside its list backfill re-reads the page
    it stopped in; Intercom resumes at the watermark's second (``updated_at`` is in seconds), so
    that second's records come again."""
    mark = (state or {}).get("crm_bookmark") or {}
    watermark = mark.get("watermark")
    if vendor == "hubspot" and str(mark.get("cursor") or "").startswith("list:"):
        return LIST_PAGE  # a list backfill resumes at the start of the page it stopped in
    if watermark is None or vendor == "salesforce":
        return 0
    if vendor == "hubspot":
        deleted = [r[DELETED_AT] for r in records.values() if r[DELETED_AT]]
        return sum(1 for d in deleted if iso_to_ms(d) >= watermark)
    stamps = [r.get("updated_at") for r in records.values()]
    return sum(
        1 for t in stamps if isinstance(t, str) and iso_to_ms(t) // 1000 == watermark // 1000
    )


def _resume_checks(clean: Keyed, killed: Output, rerun: TapRun, vendor: str) -> Counter[str]:
    """The rerun after a kill: together with what the killed run delivered, every record of the
    clean sync, with its data; per stream, no more repeats than the records the killed run
    delivered after its last STATE plus those the resume rules read again. Returns the repeats."""
    assert killed.state is not None
    first, second = _keyed(killed.messages), _once(rerun)
    repeats: Counter[str] = Counter()
    for stream, records in clean.items():
        union = first.get(stream, {}) | second.get(stream, {})
        assert union.keys() == records.keys(), stream
        assert union == records, stream
        again = first.get(stream, {}).keys() & second.get(stream, {}).keys()
        saved = killed.state["bookmarks"].get(stream)
        bound = killed.after_state[stream] + _repeats_allowed(vendor, records, saved)
        assert len(again) <= bound, (stream, len(again), bound)
        repeats[stream] = len(again)
    return repeats


#: Per CRM: a stream synced before contacts (done when the kill comes), contacts (the kill
#: lands inside), and one after (never started). Streams sync in name order.
KILL_STREAMS = {
    "hubspot": ("hubspot_companies", "hubspot_contacts", "hubspot_deals"),
    "salesforce": ("salesforce_Account", "salesforce_Contact", "salesforce_Opportunity"),
    "intercom": ("intercom_companies", "intercom_contacts", "intercom_conversations"),
}


@pytest.mark.parametrize("vendor", sorted(KILL_STREAMS))
def test_kill_9_mid_stream_then_a_rerun_from_the_saved_state_emits_every_record(
    make_sandbox: Any, tmp_path: Path, vendor: str
) -> None:
    # Given one CRM with about 1,000 accounts (1,400 to 2,000 contacts) and three of its streams
    sandbox = make_sandbox(vendors=(vendor,), size=1000)
    config = _config(sandbox)
    before, contacts, after = KILL_STREAMS[vendor]
    catalog = select(discover(tmp_path / "discover", config), KILL_STREAMS[vendor])
    clean = _once(_ok(run_tap(tmp_path / "clean", config, catalog=catalog)))
    assert len(clean[contacts]) > EVERY + 300, len(clean[contacts])
    # when the tap is killed with SIGKILL 100 records past the STATE it wrote after the first
    # 1,000 contacts
    proc = start_tap(tmp_path / "killed", config, catalog=catalog)
    killed = kill_when(proc, _past_state(contacts, 100))
    # (the kill landed inside the contacts stream)
    assert EVERY < killed.counts[contacts] < len(clean[contacts]), killed.counts
    assert killed.counts[after] == 0, killed.counts
    assert killed.state is not None
    mark = killed.state["bookmarks"][contacts]["crm_bookmark"]
    # (a first HubSpot sync lists, so its bookmark is the list page; the others' a watermark)
    assert mark["watermark"] or (vendor == "hubspot" and mark["cursor"].startswith("list:"))
    # and the tap runs again with the last STATE the killed run delivered
    rerun = _ok(run_tap(tmp_path / "rerun", config, state=killed.state, catalog=catalog))

    # then both runs together emit every record with the clean sync's data, and the rerun
    # repeats only what the killed run delivered after that STATE, plus the few records the
    # resume rules read again (_repeats_allowed); the stream done before the kill ended with a
    # STATE, so it is not read again beyond those
    repeats = _resume_checks(clean, killed, rerun, vendor)
    assert killed.after_state[before] == 0, killed.after_state
    # and the contacts up to that STATE (1,000 or more) are not read again
    assert repeats[contacts] < EVERY, (repeats, killed.counts)


# -- 3. a tie block over the search cap -----------------------------------------------------------

TIE_BLOCK = 10_050


def test_more_than_10000_contacts_on_one_millisecond_sync_once_also_across_a_kill(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given HubSpot with 10,050 contacts modified on one millisecond (a bulk import), more than
    # search returns for one query
    sandbox = make_sandbox(vendors=("hubspot",), size=30, tie_block=TIE_BLOCK)
    # (a start date makes the first sync search, as every later one does: the list backfill
    # of a first sync without one has no ties to page through)
    config = _config(sandbox) | {"start_date": "2000-01-01T00:00:00Z"}
    catalog = select(discover(tmp_path / "discover", config), ["hubspot_contacts"])
    stored = sum(sandbox.store.count("hubspot", "contacts", s) for s in (LIVE, ARCHIVED))
    assert stored > TIE_BLOCK
    # when the tap syncs the contacts
    clean = _once(_ok(run_tap(tmp_path / "clean", config, catalog=catalog)))
    # then each contact HubSpot returns is emitted exactly once
    assert len(clean["hubspot_contacts"]) == stored
    tie_ms = WorldSpec(size=30).tie_ms
    tie_iso = ms_to_iso(tie_ms)
    on_tie = [r for r in clean["hubspot_contacts"].values() if r["lastmodifieddate"] == tie_iso]
    assert len(on_tie) == TIE_BLOCK

    # when a second sync is killed with SIGKILL 100 contacts after a STATE that lies inside the
    # block, 3,000 or more contacts into it
    read_on_tie = Counter[str]()

    def inside(out: Output, m: Message) -> bool:
        if m["type"] == "RECORD" and m["record"]["lastmodifieddate"] == tie_iso:
            read_on_tie["hubspot_contacts"] += 1
        bookmark = (out.state or {}).get("bookmarks", {}).get("hubspot_contacts", {})
        in_block = (bookmark.get("crm_bookmark") or {}).get("watermark") == tie_ms
        deep = read_on_tie["hubspot_contacts"] >= 3000
        return in_block and deep and out.after_state["hubspot_contacts"] >= 100

    proc = start_tap(tmp_path / "killed", config, catalog=catalog)
    killed = kill_when(proc, inside)
    assert killed.state is not None
    saved = killed.state["bookmarks"]["hubspot_contacts"]["crm_bookmark"]
    assert saved["watermark"] == tie_ms and saved["last_id"], saved
    delivered = _keyed(killed.messages)["hubspot_contacts"].values()
    on_tie_before_kill = sum(1 for r in delivered if r["lastmodifieddate"] == tie_iso)
    assert 3000 <= on_tie_before_kill < TIE_BLOCK, on_tie_before_kill
    # and resumed from the last STATE it delivered
    rerun = _ok(run_tap(tmp_path / "rerun", config, state=killed.state, catalog=catalog))
    # then every contact is there, and the rerun repeats only what the killed run delivered
    # after that STATE (fewer than 1,000) and archived contacts (_repeats_allowed)
    _resume_checks(clean, killed, rerun, "hubspot")
    # so it does not read the block again: the bookmark holds the last id read in it
    on_tie_again = sum(
        1 for r in rerun.records["hubspot_contacts"] if r["lastmodifieddate"] == tie_iso
    )
    left = TIE_BLOCK - on_tie_before_kill
    assert on_tie_again <= left + killed.after_state["hubspot_contacts"], (on_tie_again, left)


# -- 4. rejected credentials ---------------------------------------------------------------------

#: A 401 now and then for a valid static token (HubSpot private app, Intercom access token):
#: the sandbox answers it for that request only.
STATIC_401 = [
    {"kind": "expired_token", "vendor": "hubspot", "path": "/crm/*", "every": 9},
    {"kind": "expired_token", "vendor": "intercom", "every": 4},
]
RETRIED = "token rejected, retrying once in 1 s with the same token"


def test_a_401_now_and_then_on_a_static_token_costs_one_retry_not_the_run(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given HubSpot and Intercom with their static tokens, and a clean sync of everything
    sandbox = make_sandbox(vendors=("hubspot", "intercom"), size=150)
    config = _config(sandbox)
    admin = sandbox.urls["admin"] + "/_sandbox"
    clean = _once(_ok(run_tap(tmp_path / "clean", config)))
    # when every 9th API call of each answers 401
    httpx.post(f"{admin}/stats/reset").raise_for_status()
    httpx.post(f"{admin}/faults", json=STATIC_401).raise_for_status()
    faulty = run_tap(tmp_path / "faulty", config)
    # then the sync succeeds with the very same records, each once
    assert _once(_ok(faulty)) == clean
    # and every 401 was one retry with the same token, after the pause
    stats = httpx.get(f"{admin}/stats").json()["vendors"]
    fired = {v: stats[v]["faults"].get("expired_token", 0) for v in ("hubspot", "intercom")}
    assert min(fired.values()) >= 2, fired
    assert faulty.stderr.count(RETRIED) == sum(fired.values()), faulty.stderr[-3000:]


def test_a_crm_that_keeps_rejecting_its_token_fails_alone_and_a_rerun_completes_it(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given the three CRMs, a catalog and a clean sync
    sandbox = make_sandbox(size=150)
    config = _config(sandbox)
    admin = sandbox.urls["admin"] + "/_sandbox"
    catalog = discover(tmp_path / "discover", config)
    clean = _once(_ok(run_tap(tmp_path / "clean", config, catalog=catalog)))
    hubspot = {s for s in clean if s.startswith("hubspot_")}
    # when HubSpot rejects the token from its 3rd API call on (a private app revoked mid-run)
    revoked = {"kind": "expired_token", "vendor": "hubspot", "path": "/crm/*"}
    httpx.post(f"{admin}/faults", json=[revoked | {"calls": list(range(3, 5000))}])
    failed = run_tap(tmp_path / "failed", config, catalog=catalog)
    # then the run fails, in one line naming HubSpot, the setting and the CRMs that finished
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert "tap-crm: hubspot " in last and "'hubspot_access_token'" in last, last
    assert last.endswith("the other CRMs' streams finished (intercom, salesforce)"), last
    # and the other CRMs' streams hold every record, with a STATE for each
    got = _keyed(failed.messages)
    for stream in set(clean) - hubspot:
        assert got.get(stream) == clean[stream], stream
    state = failed.last_state
    assert state is not None and set(clean) - hubspot <= set(state["bookmarks"]), state
    # and HubSpot read only part of its records
    read = sum(len(got.get(s, {})) for s in hubspot)
    assert read < sum(len(clean[s]) for s in hubspot), read
    # and once the token is good again, a rerun from that STATE completes HubSpot
    httpx.delete(f"{admin}/faults").raise_for_status()
    rerun = _once(_ok(run_tap(tmp_path / "rerun", config, state=state, catalog=catalog)))
    for stream in hubspot:
        assert got.get(stream, {}) | rerun.get(stream, {}) == clean[stream], stream


def test_a_wrong_token_fails_discovery_and_leaves_only_its_crm_out_of_a_sync(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given HubSpot and Intercom, Intercom's token wrong
    sandbox = make_sandbox(vendors=("hubspot", "intercom"), size=40)
    config = _config(sandbox) | {"intercom_access_token": "not-the-token"}
    # when the tap discovers
    found = run_tap(tmp_path / "discover", config, args=["--discover"])
    # then it writes no catalog (one missing Intercom would drop its streams from the
    # selection), and says why in one line naming the setting
    assert found.returncode == 1 and not found.stdout.strip()
    last = found.stderr.strip().splitlines()[-1]
    assert "tap-crm: intercom " in last and "'intercom_access_token'" in last, last
    assert "Traceback" not in found.stderr and "not-the-token" not in found.stderr
    # when it syncs without a catalog
    run = run_tap(tmp_path / "sync", config)
    # then HubSpot is synced in full and the run fails, naming Intercom
    assert run.returncode == 1
    assert run.stderr.strip().endswith("the other CRMs' streams finished (hubspot)"), run.stderr
    streams = {m["stream"] for m in run.messages if m["type"] == "RECORD"}
    assert streams and all(s.startswith("hubspot_") for s in streams), streams
    assert run.last_state is not None
