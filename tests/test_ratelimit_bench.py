"""The rate-limited bench (bench/ratelimit.py): the sandbox's call timeline it reads, the quota
optimum it replays, and a small end-to-end run of tap-crm that is never throttled. Speed is
never asserted: the bench measures it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import ratelimit

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]
LIST = "/crm/v3/objects/{t}"
SEARCH = "/crm/v3/objects/{t}/search"


def test_given_burst_calls_when_replaying_quota_then_each_window_full_before_next() -> None:
    # Given 25 calls under 10 per rolling second
    windows = {"burst": (10, 1.0), "search": (5, 1.0)}
    # When the fastest schedule is replayed
    times = ratelimit.quota_schedule(["burst"] * 25, windows)
    # Then ten go at once, ten when the first has left the window, five a second later
    assert times == [0.0] * 10 + [1.0] * 10 + [2.0] * 5


def test_given_two_budgets_when_replaying_quota_then_each_has_its_own_window() -> None:
    # Given 5 burst calls, then 6 searches (5 per second), then 1 burst call, under 5 per 2 s
    windows = {"burst": (5, 2.0), "search": (5, 1.0)}
    kinds = ["burst"] * 5 + ["search"] * 6 + ["burst"]
    # When the fastest schedule is replayed, calls one after another
    times = ratelimit.quota_schedule(kinds, windows)
    # Then the sixth search waits for search's window, the last call for the burst window
    assert times[:11] == [0.0] * 10 + [1.0]
    assert times[11] == 2.0


def _call(at: float, route: str, status: int = 200) -> list[Any]:
    method = "POST" if route.endswith("/search") else "GET"
    return [at, "hubspot", method, route, status]


def test_given_run_at_quota_when_summarizing_then_full_share_and_late_429s_counted() -> None:
    # Given a timeline that follows the optimum exactly (3 per 1 s), with one 429 in the first
    # window and one after it
    calls = [_call(100.0 + k // 3, LIST) for k in range(9)]
    calls.insert(3, _call(100.5, LIST, 429))
    calls.append(_call(102.5, LIST, 429))
    calls.sort(key=lambda c: c[0])
    # When it is summarized against that quota
    got = ratelimit.summarize(calls, limit=3, interval=1.0, search_per_second=5)
    # Then the share is whole and only the later 429 is counted after the first window
    assert got["calls"] == 9
    assert got["span_s"] == pytest.approx(2.0)
    assert got["optimum_s"] == pytest.approx(2.0)
    assert got["share"] == pytest.approx(1.0)
    assert (got["throttled"], got["throttled_after_first_window"]) == (2, 1)
    assert got["budgets"]["burst"]["throttled_after_first_window"] == 1


def test_given_slow_searches_when_summarizing_then_their_stretch_carries_the_loss() -> None:
    # Given 3 burst calls at once, then 5 searches taking 2 s where 0 s were allowed
    calls = [_call(10.0, LIST) for _ in range(3)]
    calls += [_call(10.0 + 0.5 * (k + 1), SEARCH) for k in range(4)]
    # When summarized (burst 3 per second, search 5 per second)
    got = ratelimit.summarize(calls, limit=3, interval=1.0, search_per_second=5)
    # Then the burst budget is at its optimum and search's 2 s are all lost
    assert got["budgets"]["burst"]["share"] == pytest.approx(1.0)
    assert got["budgets"]["search"]["seconds"] == pytest.approx(2.0)
    assert got["budgets"]["search"]["optimum_s"] == pytest.approx(0.0)
    assert got["share"] == pytest.approx(0.0)


def test_given_enforced_window_when_reading_timeline_then_calls_in_order_with_429s(
    make_sandbox: Any,
) -> None:
    # Given a sandbox enforcing 3 calls per 10 s for HubSpot
    sandbox = make_sandbox(
        vendors=("hubspot", "intercom"),
        size=0,
        rate_limits="real",
        options={"hubspot": {"burst_limit": 3}},
    )
    admin = sandbox.urls["admin"]
    with httpx.Client(base_url=sandbox.urls["hubspot"], timeout=30) as hs:
        # When five list calls are made, and one Intercom call
        for _ in range(5):
            hs.get("/crm/v3/objects/companies", headers={"Authorization": f"Bearer {TOKEN}"})
    ic = DEFAULT_CREDENTIALS["intercom"]["access_token"]
    httpx.get(f"{sandbox.urls['intercom']}/contacts", headers={"Authorization": f"Bearer {ic}"})
    timeline = httpx.get(f"{admin}/_sandbox/stats/calls", params={"vendor": "hubspot"}).json()
    # Then HubSpot's timeline holds them in order: three admitted, two throttled
    calls = timeline["calls"]
    assert timeline["dropped"] == 0
    assert [(c[1], c[2], c[3], c[4]) for c in calls] == [
        ("hubspot", "GET", LIST, status) for status in (200, 200, 200, 429, 429)
    ]
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    # And the whole timeline has the Intercom call too, until a reset empties it
    assert len(httpx.get(f"{admin}/_sandbox/stats/calls").json()["calls"]) == 6
    httpx.post(f"{admin}/_sandbox/stats/reset")
    assert httpx.get(f"{admin}/_sandbox/stats/calls").json() == {"calls": [], "dropped": 0}


def test_given_bounded_timeline_when_full_then_oldest_dropped_and_counted() -> None:
    # Given a timeline that holds 3 calls
    from crm_connectors.sandbox.stats import Stats

    stats = Stats(timeline_size=3)
    # When 5 are recorded
    for status in (200, 201, 202, 203, 204):
        stats.record("hubspot", "GET", LIST, status, 10)
    # Then the newest 3 are kept and the 2 dropped are counted; the counters keep all 5
    got = stats.timeline()
    assert [c[4] for c in got["calls"]] == [202, 203, 204]
    assert got["dropped"] == 2
    assert stats.snapshot()["vendors"]["hubspot"]["calls"] == 5


def test_given_small_seed_when_tap_runs_rate_limited_then_never_throttled(tmp_path: Path) -> None:
    # Given a small HubSpot seed and a sandbox enforcing 5 calls per rolling second and 2
    # searches per second (tap-crm told the same search limit, as it would be for HubSpot's 5)
    db = tmp_path / "s.sqlite"
    seed(db, WorldSpec(size=20, seed=3), ("hubspot",))
    # When tap-crm syncs every HubSpot stream against it, from a start date (so that its
    # first sync searches rather than lists, and both budgets are used)
    got = ratelimit.measure_rate_limited(
        db,
        tmp_path,
        limit=5,
        interval_ms=1000,
        search_per_second=2,
        start_date="2000-01-01T00:00:00Z",
    )
    # Then it read records over more than one window of both budgets without one 429
    assert got["records"] > 0
    assert got["budgets"]["burst"]["calls"] > 5
    assert got["budgets"]["search"]["calls"] > 2
    assert got["throttled"] == 0
