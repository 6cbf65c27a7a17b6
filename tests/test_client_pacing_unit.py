"""Pacer arithmetic with a fake clock: the waits the headers call for, without waiting."""

from __future__ import annotations

import httpx
import pytest

from crm_connectors.errors import QuotaExhausted
from crm_connectors.pacing import HubSpotPacer, IntercomPacer, SalesforcePacer


class Time:
    """A fake clock whose sleep advances it, recording each wait."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _hubspot(remaining: int, limit: int = 10, interval_ms: int = 1000) -> httpx.Response:
    return httpx.Response(
        200,
        headers={
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
        },
    )


def test_given_other_consumer_on_token_when_remaining_low_then_hubspot_pacer_waits() -> None:
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0)
    pacer.before("GET /crm/v3/objects/{t}")
    pacer.after(_hubspot(remaining=1))  # someone else used 8 of the 10 in this window
    pacer.before("GET /crm/v3/objects/{t}")
    pacer.after(_hubspot(remaining=0))
    assert t.waits == []
    t.now += 0.25
    pacer.before("GET /crm/v3/objects/{t}")
    assert sum(t.waits) == pytest.approx(0.75)  # until the oldest call leaves the 1 s window


def test_given_search_route_when_pacing_hubspot_then_separate_budget() -> None:
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, search_per_second=5)
    for _ in range(5):
        pacer.before("POST /crm/v3/objects/{t}/search")
        pacer.after(httpx.Response(200))  # search responses carry no rate-limit headers
    pacer.before("GET /crm/v3/objects/{t}")  # the standard budget is untouched
    pacer.after(_hubspot(remaining=9))
    assert t.waits == []
    pacer.before("POST /crm/v3/objects/{t}/search")
    assert sum(t.waits) == pytest.approx(1.0)


def test_given_daily_remaining_at_reserve_when_pacing_hubspot_then_quota_exhausted() -> None:
    pacer = HubSpotPacer(daily_reserve=100)
    pacer.before("GET /crm/v3/objects/{t}")
    pacer.after(httpx.Response(200, headers={"X-HubSpot-RateLimit-Daily-Remaining": "100"}))
    with pytest.raises(QuotaExhausted):
        pacer.before("GET /crm/v3/objects/{t}")
    pacer.before("POST /crm/v3/objects/{t}/search")  # search has no daily budget [§1.8]


def test_given_window_spent_when_pacing_intercom_then_waits_for_reset() -> None:
    t = Time(now=2_000.2)
    pacer = IntercomPacer(window=10.0, clock=t.clock, sleep=t.sleep, margin=0)
    pacer.before("GET /contacts")
    headers = {
        "X-RateLimit-Limit": "167",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2010",
    }
    pacer.after(httpx.Response(200, headers=headers))
    pacer.before("GET /contacts")
    assert sum(t.waits) == pytest.approx(9.8)
    # The new window is assumed full: the next calls go without waiting.
    for _ in range(5):
        pacer.before("GET /contacts")
    assert len(t.waits) == 1


def test_given_max_share_when_pacing_salesforce_then_stops_at_share() -> None:
    pacer = SalesforcePacer(max_share=0.01)
    calls = 0
    with pytest.raises(QuotaExhausted):
        for _ in range(50):
            pacer.before("GET /query")
            pacer.after(httpx.Response(200, headers={"Sforce-Limit-Info": "api-usage=10/1000"}))
            calls += 1
    assert calls == 10
