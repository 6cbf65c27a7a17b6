"""Pacer arithmetic with a fake clock: the waits the headers call for, without waiting."""

from __future__ import annotations

import httpx
import pytest

from crm_connectors.errors import QuotaExhausted
from crm_connectors.hubspot.pacing import HubSpotPacer
from crm_connectors.intercom.pacing import IntercomPacer
from crm_connectors.salesforce.pacing import SalesforcePacer


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
    pacer.before("POST /crm/v3/objects/{t}/search")  # no daily budget [hubspot/API.md §1.8]


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


LIST = "GET /crm/v3/objects/{t}"


def _calls(pacer: HubSpotPacer, n: int, response: httpx.Response) -> None:
    for _ in range(n):
        pacer.before(LIST)
        pacer.after(response)


def test_given_no_rate_limit_headers_when_bursting_then_hubspot_pacer_stops_waiting() -> None:
    # Given a server whose successful non-search responses never carry rate-limit headers
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, headerless_after=3)
    # When more calls than the assumed lowest tier (100 per 10 s) are made at once
    _calls(pacer, 150, httpx.Response(200))
    # Then none waited: the pacer does not guess a window the server does not publish
    assert t.waits == []
    assert not pacer.pacing_burst


def test_given_headerless_failures_when_counting_evidence_then_hubspot_pacer_keeps_pacing() -> None:
    # Given a gateway's 502s, which carry no HubSpot headers whatever the limit is
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, headerless_after=3)
    # When the lowest tier's window fills with them
    _calls(pacer, 100, httpx.Response(502))
    pacer.before(LIST)
    # Then they were no evidence: the 101st call waits out the assumed 10 s window
    assert sum(t.waits) == pytest.approx(10.0)
    assert pacer.pacing_burst


def test_given_unpaced_server_when_headers_appear_then_hubspot_pacer_paces_again() -> None:
    # Given a pacer that stopped pacing after headerless responses
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, headerless_after=3)
    _calls(pacer, 5, httpx.Response(200))
    assert not pacer.pacing_burst
    # When a response then publishes a window with nothing left in it
    _calls(pacer, 1, _hubspot(remaining=0, limit=10, interval_ms=1000))
    pacer.before(LIST)
    # Then the next call waits for the window, its calls counted all along
    assert pacer.pacing_burst
    assert sum(t.waits) == pytest.approx(1.0)


def test_given_unpaced_server_when_throttled_then_hubspot_pacer_paces_again() -> None:
    # Given a pacer that stopped pacing, and as many calls as the lowest tier allows
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, headerless_after=3)
    _calls(pacer, 99, httpx.Response(200))
    # When the server throttles one (a 429 without headers)
    _calls(pacer, 1, httpx.Response(429, json={"policyName": "TEN_SECONDLY_ROLLING"}))
    pacer.before(LIST)
    # Then pacing resumes at the assumed 100 per 10 s: the next call waits for the window
    assert pacer.pacing_burst
    assert sum(t.waits) == pytest.approx(10.0)


def test_given_headers_seen_when_later_responses_lack_them_then_hubspot_pacer_keeps_pacing() -> (
    None
):
    # Given a server that published 10 per second on its first response
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0, headerless_after=3)
    _calls(pacer, 1, _hubspot(remaining=9, limit=10, interval_ms=1000))
    # When the next nine responses carry no headers
    _calls(pacer, 9, httpx.Response(200))
    pacer.before(LIST)
    # Then the window still holds: the eleventh call waits for the first to leave it
    assert pacer.pacing_burst
    assert sum(t.waits) == pytest.approx(1.0)


def test_given_own_calls_aged_out_in_flight_when_remaining_shows_others_then_pacer_counts() -> None:
    # Given five calls of ours in a window of 10 per second
    t = Time()
    pacer = HubSpotPacer(clock=t.clock, sleep=t.sleep, margin=0)
    for left in (9, 8, 7, 6, 5):
        _calls(pacer, 1, _hubspot(remaining=left, limit=10, interval_ms=1000))
    # When a slow call, sent 0.9 s later, lands after those five have left the window and
    # reports 1 left: another client on the token made 8 calls in it
    t.now += 0.9
    pacer.before(LIST)
    t.now += 0.6
    pacer.after(_hubspot(remaining=1, limit=10, interval_ms=1000))
    # Then of two calls sent together one takes the last slot and the other waits the window
    # out: our five old calls did not hide the others' eight
    pacer.before(LIST)
    assert t.waits == []
    pacer.before(LIST)
    assert sum(t.waits) == pytest.approx(1.0)
