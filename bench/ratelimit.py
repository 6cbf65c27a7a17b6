"""The rate-limited run: tap-crm against a sandbox that enforces HubSpot's limits, as a share of
the best the quota allows, and the throttled (429) responses it got.

tap-crm syncs every HubSpot stream (properties, the objects' archived lists and searches, owners,
the company associations) with its own pacer and real settings: search keeps HubSpot's
5 requests/s (``hubspot_search_requests_per_second`` is *not* lifted as in the unlimited runs).
The sandbox enforces both budgets of a private app [hubspot/API.md §1.4, §1.8]: the rolling burst
window of ``limit`` calls per ``interval_ms`` (HubSpot's 100 per 10 s, or that rate scaled down
to a shorter window so a short run holds many windows) over every call but search, and search's
own ``search_per_second``, which HubSpot sends no headers for.

The optimum is the quota's, for the calls this run made: the sandbox's timeline (``GET
/_sandbox/stats/calls``) gives the calls it admitted in order, and the bench replays
them (:func:`quota_schedule`), one at a time as the tap makes them, each as early as its budget's
window allows and with no time spent on the call itself. ``share`` is that optimum span over the
span the tap took (first admitted call to last), so 100% means the tap ran exactly at its quota;
each budget gets its own share of the gaps between calls (:func:`summarize`). Throttled calls are
not replayed (they are not needed); ``throttled_after_first_window`` counts those that came more
than one window (of their budget) after the run's first call.

    .venv/bin/python bench/ratelimit.py --size 5000 [--limit 20 --interval-ms 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from common import run_singer, start_sandbox, stop, tap_command, tap_config

#: HubSpot's search budget: 5 requests/s per token, in its own window [hubspot/API.md §1.4].
SEARCH_PER_SECOND = 5
BURST, SEARCH = "burst", "search"


def budget_of(route: str) -> str:
    """Which HubSpot budget a call counts against: search, or the burst window (every other
    call) [hubspot/API.md §1.4, §1.8]."""
    return SEARCH if route.split("?")[0].rstrip("/").endswith("/search") else BURST


def quota_schedule(kinds: Iterable[str], windows: dict[str, tuple[int, float]]) -> list[float]:
    """When each call of ``kinds`` (each call's budget, in order) is made, in seconds from the
    first, if they are made one after another as early as rolling windows of ``(limit,
    interval)`` per budget admit them, each call taking no time: the fastest schedule the quota
    allows this sequence."""
    stamps: dict[str, deque[float]] = {kind: deque() for kind in windows}
    times: list[float] = []
    now = 0.0
    for kind in kinds:
        limit, interval = windows[kind]
        window = stamps[kind]
        if len(window) >= limit:
            # A call is admitted once the limit-th latest call has left the window (the
            # sandbox's RollingWindow, HubSpot's rolling 10 s).
            now = max(now, window[-limit] + interval)
        window.append(now)
        if len(window) > limit:
            window.popleft()
        times.append(now)
    return times


def summarize(
    calls: list[list[Any]], limit: int, interval: float, search_per_second: int
) -> dict[str, Any]:
    """The figures of one run from the sandbox's timeline ``[[unix_s, vendor, method, route,
    status], ...]`` of HubSpot calls.

    Each gap between two admitted calls is put on the budget of the later call (the one the
    pacer may have held back), so ``share`` per budget is the optimum's time over the run's
    time in the stretches that budget governs, and the two add up to the run's share."""
    windows = {BURST: (limit, interval), SEARCH: (search_per_second, 1.0)}
    if not calls:
        raise RuntimeError("the sandbox saw no HubSpot call")
    start = calls[0][0]
    admitted = [c for c in calls if c[4] != 429]
    kinds = [budget_of(c[3]) for c in admitted]
    best = quota_schedule(kinds, windows)
    took = {kind: 0.0 for kind in windows}
    needed = {kind: 0.0 for kind in windows}
    for k in range(1, len(admitted)):
        took[kinds[k]] += admitted[k][0] - admitted[k - 1][0]
        needed[kinds[k]] += best[k] - best[k - 1]
    span = sum(took.values())
    optimum = sum(needed.values())
    budgets: dict[str, Any] = {}
    for kind, (lim, every) in windows.items():
        throttled = [c for c in calls if c[4] == 429 and budget_of(c[3]) == kind]
        budgets[kind] = {
            "quota": f"{lim} per {every:g} s",
            "quota_per_s": lim / every,
            "calls": kinds.count(kind),
            "seconds": took[kind],
            "optimum_s": needed[kind],
            "share": needed[kind] / took[kind] if took[kind] else 1.0,
            "throttled": len(throttled),
            "throttled_after_first_window": sum(1 for c in throttled if c[0] > start + every),
        }
    return {
        "calls": len(admitted),
        "span_s": span,
        "calls_per_s": (len(admitted) - 1) / span if span else 0.0,
        "optimum_s": optimum,
        "optimum_calls_per_s": (len(admitted) - 1) / optimum if optimum else 0.0,
        "share": optimum / span if span else 1.0,
        "throttled": sum(b["throttled"] for b in budgets.values()),
        "throttled_after_first_window": sum(
            b["throttled_after_first_window"] for b in budgets.values()
        ),
        "budgets": budgets,
    }


def measure_rate_limited(
    db: Path,
    workdir: Path,
    limit: int = 20,
    interval_ms: int = 2_000,
    search_per_second: int = SEARCH_PER_SECOND,
    **tap_settings: Any,
) -> dict[str, Any]:
    """A full tap-crm sync of HubSpot (every stream) against a sandbox serving ``db`` that
    enforces ``limit`` calls per rolling ``interval_ms`` (the default is HubSpot's 100 per 10 s
    scaled down to 20 per 2 s: the same 10 calls/s in smaller bursts) and ``search_per_second``.
    ``tap_settings`` are added to tap-crm's config (a ``start_date`` makes a first HubSpot sync
    search instead of list). Returns the tap's records and seconds and :func:`summarize`'s
    figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    options = [
        f"hubspot.burst_limit={limit}",
        f"hubspot.burst_interval_ms={interval_ms}",
        f"hubspot.search_per_second={search_per_second}",
    ]
    proc, urls = start_sandbox(db, workdir, rate_limits=True, options=options)
    try:
        # The search limit the sandbox enforces (HubSpot's 5/s unless scaled for a test).
        config = tap_config(
            "hubspot", urls, hubspot_search_requests_per_second=search_per_second, **tap_settings
        )
        cmd = tap_command(config, workdir, name="tap-ratelimit")
        httpx.post(f"{urls['admin']}/_sandbox/stats/reset", timeout=30).raise_for_status()
        run = run_singer(cmd, workdir / "tap-ratelimit.log")
        timeline = httpx.get(
            f"{urls['admin']}/_sandbox/stats/calls", params={"vendor": "hubspot"}, timeout=30
        ).json()
    finally:
        stop(proc)
    if timeline["dropped"]:
        raise RuntimeError(f"the sandbox's timeline dropped {timeline['dropped']} calls")
    figures = summarize(timeline["calls"], limit, interval_ms / 1000, search_per_second)
    return {
        "streams": "every HubSpot stream",
        "records": run["records"],
        "seconds": run["seconds"],
        "rss_mb": run["rss_mb"],
        **figures,
    }


def main() -> None:
    from crm_connectors.sandbox.seed import seed
    from crm_connectors.sandbox.world import WorldSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=5000, help="accounts to seed")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--interval-ms", type=int, default=2_000)
    parser.add_argument("--workdir", type=Path, help="kept between runs (default: a new temp dir)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-bench-ratelimit-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"ratelimit-{args.size}.sqlite"
    if not db.exists():
        seed(db, WorldSpec(size=args.size, seed=1), ("hubspot",))
    result = measure_rate_limited(db, workdir, args.limit, args.interval_ms)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
