"""Pacing: with the sandbox enforcing scaled-down real limits, a burst through the pacer is never
throttled, and the pacer waits no longer in total than the limit requires (its waits are
recorded, not timed: throughput itself is measured in bench/, never asserted here); the Salesforce
guard stops before the org's daily allocation is gone (hubspot/API.md §1.4, §1.8,
salesforce/API.md §2.8, intercom/API.md §3.7)."""

from __future__ import annotations

from typing import Any

import pytest
from clientkit import READ, Sleeper, client, statuses

from crm_connectors.errors import QuotaExhausted, RateLimited
from crm_connectors.http import RetryPolicy
from crm_connectors.hubspot.pacing import HubSpotPacer
from crm_connectors.intercom.pacing import IntercomPacer
from crm_connectors.salesforce.pacing import SalesforcePacer

ONCE = RetryPolicy(max_tries=1)


def _burst(api: Any, vendor: str, n: int) -> None:
    path, params, route = READ[vendor]
    for _ in range(n):
        api.request("GET", path, params=params, route=route)


class ClockSleeper:
    """The pacer's sleep on the sandbox's clock: records what the pacer asked for and advances
    the clock the sandbox's windows run on, so nothing waits for real."""

    def __init__(self, sandbox: Any) -> None:
        self.clock = sandbox.ctx.clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(max(0.0, seconds))


def _needed(n: int, limit: int, interval: float) -> float:
    """The least total wait that n calls need under `limit` calls per `interval`."""
    return (-(-n // limit) - 1) * interval


HUBSPOT_10_PER_S = {"hubspot": {"burst_limit": 10, "burst_interval_ms": 1000}}


def test_given_no_pacer_when_bursting_hubspot_then_throttled(make_sandbox: Any) -> None:
    """The control: the scaled-down limit is really enforced."""
    sandbox = make_sandbox(
        vendors=("hubspot",), size=5, rate_limits="real", options=HUBSPOT_10_PER_S
    )
    with client(sandbox, "hubspot", retry=ONCE) as api, pytest.raises(RateLimited) as caught:
        _burst(api, "hubspot", 15)
    assert caught.value.policy == "TEN_SECONDLY_ROLLING"


def test_given_rolling_window_when_bursting_through_pacer_then_no_429_and_rate_used(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("hubspot",), size=5, rate_limits="real", options=HUBSPOT_10_PER_S
    )
    n = 35
    sleeper = ClockSleeper(sandbox)
    pacer = HubSpotPacer(sleep=sleeper, clock=sleeper.clock.monotonic)
    with client(sandbox, "hubspot", pacer=pacer, retry=ONCE) as api:
        _burst(api, "hubspot", n)
    assert statuses(sandbox, "hubspot", total=n) == {"200": n}
    # 10 per rolling second: the pacer may not wait much beyond what the window forces.
    assert sum(sleeper.waits) <= _needed(n, 10, 1.0) + 0.5


def test_given_limits_off_when_bursting_through_pacer_then_no_headers_and_no_wait(
    make_sandbox: Any,
) -> None:
    # Given a sandbox that enforces no limit (and so advertises none)
    sandbox = make_sandbox(vendors=("hubspot",), size=5, rate_limits="off")
    sleeper = Sleeper()
    pacer = HubSpotPacer(sleep=sleeper)
    with client(sandbox, "hubspot", pacer=pacer, retry=ONCE) as api:
        # When more calls than HubSpot's lowest tier (100 per 10 s) go through the pacer
        first = api.send("GET", READ["hubspot"][0], params=READ["hubspot"][1])
        _burst(api, "hubspot", 119)
    # Then no response carried rate-limit headers and the pacer never held a call back
    assert not [h for h in first.headers if h.lower().startswith("x-hubspot-ratelimit")]
    assert statuses(sandbox, "hubspot", total=120) == {"200": 120}
    assert sleeper.waits == []
    assert not pacer.pacing_burst


def test_given_search_budget_when_searching_through_pacer_then_no_429_and_rate_used(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("hubspot",),
        size=5,
        rate_limits="real",
        options={"hubspot": {"search_per_second": 4}},
    )
    n = 14
    sleeper = ClockSleeper(sandbox)
    pacer = HubSpotPacer(search_per_second=4, sleep=sleeper, clock=sleeper.clock.monotonic)
    with client(sandbox, "hubspot", pacer=pacer, retry=ONCE) as api:
        for _ in range(n):
            api.request(
                "POST",
                "/crm/v3/objects/companies/search",
                json={"limit": 1},
                route="POST /crm/v3/objects/{t}/search",
                idempotent=True,
            )
    assert statuses(sandbox, "hubspot", total=n) == {"200": n}
    assert sum(sleeper.waits) <= _needed(n, 4, 1.0) + 0.5


def test_given_no_pacer_when_searching_hubspot_fast_then_throttled(make_sandbox: Any) -> None:
    sandbox = make_sandbox(vendors=("hubspot",), size=5, rate_limits="real")
    with client(sandbox, "hubspot", retry=ONCE) as api, pytest.raises(RateLimited) as caught:
        for _ in range(8):
            api.request("POST", "/crm/v3/objects/companies/search", json={"limit": 1})
    assert caught.value.policy == "SECONDLY"


INTERCOM_10_PER_S = {"intercom": {"calls_per_minute": 600, "window_seconds": 1}}


def test_given_fixed_windows_when_bursting_through_pacer_then_no_429_and_rate_used(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("intercom",), size=5, rate_limits="real", options=INTERCOM_10_PER_S
    )
    n = 35
    sleeper = ClockSleeper(sandbox)
    pacer = IntercomPacer(window=1.0, sleep=sleeper, clock=sleeper.clock.time)
    with client(sandbox, "intercom", pacer=pacer, retry=ONCE) as api:
        _burst(api, "intercom", n)
    assert statuses(sandbox, "intercom", total=n) == {"200": n}
    # Fixed windows: at most one wait per window boundary, each at most one window long.
    assert sum(sleeper.waits) <= _needed(n, 10, 1.0) + 1.0


def test_given_no_pacer_when_bursting_intercom_then_throttled(make_sandbox: Any) -> None:
    sandbox = make_sandbox(
        vendors=("intercom",), size=5, rate_limits="real", options=INTERCOM_10_PER_S
    )
    with client(sandbox, "intercom", retry=ONCE) as api, pytest.raises(RateLimited):
        _burst(api, "intercom", 25)


@pytest.mark.parametrize(
    ("guard", "calls"),
    [({"min_remaining": 5}, 25), ({"max_share": 0.5}, 15)],
    ids=["min_remaining", "max_share"],
)
def test_given_small_daily_allocation_when_reading_salesforce_then_guard_stops_first(
    make_sandbox: Any, guard: dict[str, Any], calls: int
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",),
        size=5,
        rate_limits="real",
        options={"salesforce": {"daily_api_requests": 30}},
    )
    pacer = SalesforcePacer(**guard)
    made = 0
    with (
        client(sandbox, "salesforce", pacer=pacer, sleeper=Sleeper()) as api,
        pytest.raises(QuotaExhausted) as caught,
    ):
        for _ in range(100):
            api.request("GET", "/sobjects", route="GET /sobjects")
            made += 1
    assert made == calls
    assert caught.value.status is None  # raised by the guard, not by Salesforce's 403
    assert pacer.usage == (calls, 30)
    assert "403" not in statuses(sandbox, "salesforce", total=calls)


def test_given_daily_remaining_at_reserve_when_reading_hubspot_then_guard_stops_first(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("hubspot",), size=5, rate_limits="real", options={"hubspot": {"daily_limit": 6}}
    )
    made = 0
    with (
        client(sandbox, "hubspot", pacer=HubSpotPacer(daily_reserve=2), retry=ONCE) as api,
        pytest.raises(QuotaExhausted),
    ):
        for _ in range(10):
            _burst(api, "hubspot", 1)
            made += 1
    assert made == 4
    assert statuses(sandbox, "hubspot", total=4) == {"200": 4}
