"""Retries: faults of each kind are ridden out, waits honour Retry-After, and a call that may
have been applied (a create after a dropped connection) is never sent twice."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import pytest
from clientkit import ALL, API_PATHS, READ, Sleeper, client, faults_fired, statuses

from crm_connectors.errors import NetworkError, RateLimited, ServerError
from crm_connectors.http import RetryPolicy, parse_retry_after
from crm_connectors.sandbox.faults import Fault

N = 40
KINDS: list[dict[str, Any]] = [
    {"kind": "rate_limit", "retry_after": 2},
    {"kind": "rate_limit"},
    {"kind": "server_error"},
    {"kind": "drop"},
    {"kind": "truncate"},
]
CASES = [
    (vendor, fault)
    for vendor in ALL
    for fault in KINDS
    # A Salesforce throttle without Retry-After is its daily allocation: fatal, not retried.
    if not (vendor == "salesforce" and fault == {"kind": "rate_limit"})
]


@pytest.mark.parametrize(
    ("vendor", "fault"), CASES, ids=[f"{v}-{'-'.join(map(str, f.values()))}" for v, f in CASES]
)
def test_given_random_faults_when_reading_repeatedly_then_every_read_succeeds(
    make_sandbox: Any, vendor: str, fault: dict[str, Any]
) -> None:
    spec = {**fault, "vendor": vendor, "path": API_PATHS[vendor], "probability": 0.2}
    sandbox = make_sandbox(vendors=(vendor,), size=10, faults=[Fault.from_dict(spec)])
    sleeper = Sleeper()
    path, params, route = READ[vendor]
    with client(sandbox, vendor, sleeper=sleeper, retry=RetryPolicy(max_tries=8)) as api:
        bodies = [api.request("GET", path, params=params, route=route) for _ in range(N)]

    assert all(body for body in bodies)
    fired = faults_fired(sandbox, vendor).get(fault["kind"], 0)
    assert fired >= 2  # the fault really fired (probability 0.2 over ≥ 40 calls)
    assert len(sleeper.waits) == fired  # one wait per failed attempt, none otherwise
    if "retry_after" in fault:
        assert sleeper.waits == [fault["retry_after"]] * fired  # Retry-After honoured exactly
    else:
        assert all(0 <= w <= RetryPolicy().cap for w in sleeper.waits)
    assert {a.route for a in sleeper.retries} == {route}


def test_given_dropped_connection_when_creating_then_not_retried(make_sandbox: Any) -> None:
    drop = {"kind": "drop", "vendor": "hubspot", "method": "POST", "path": "/crm/*", "calls": [1]}
    sandbox = make_sandbox(vendors=("hubspot",), size=0, faults=[Fault.from_dict(drop)])
    sleeper = Sleeper()
    body = {"properties": {"name": "Once Only", "domain": "once.example"}}
    by_domain = {"propertyName": "domain", "operator": "EQ", "value": "once.example"}
    with client(sandbox, "hubspot", sleeper=sleeper) as api:
        with pytest.raises(NetworkError) as caught:
            api.request("POST", "/crm/v3/objects/companies", json=body)
        found = api.request(
            "POST",
            "/crm/v3/objects/companies/search",
            json={"filterGroups": [{"filters": [by_domain]}]},
            idempotent=True,
        )
    assert caught.value.sent is True
    assert sleeper.waits == []
    assert statuses(sandbox, "hubspot", "POST /crm/v3/objects/{t}", total=1) == {"0": 1}
    assert found["total"] == 0  # the create was sent once, and never repeated


def test_given_dropped_connection_when_searching_marked_idempotent_then_retried(
    make_sandbox: Any,
) -> None:
    drop = {"kind": "drop", "vendor": "hubspot", "path": "/crm/*/search", "calls": [1]}
    sandbox = make_sandbox(vendors=("hubspot",), faults=[Fault.from_dict(drop)])
    sleeper = Sleeper()
    with client(sandbox, "hubspot", sleeper=sleeper) as api:
        page = api.request(
            "POST", "/crm/v3/objects/companies/search", json={"limit": 5}, idempotent=True
        )
    assert len(page["results"]) == 5
    assert len(sleeper.waits) == 1


def test_given_throttled_create_when_posting_then_retried_and_created_once(
    make_sandbox: Any,
) -> None:
    throttle = {
        "kind": "rate_limit",
        "vendor": "hubspot",
        "method": "POST",
        "path": "/crm/*",
        "calls": [1],
        "retry_after": 1,
    }
    sandbox = make_sandbox(vendors=("hubspot",), size=0, faults=[Fault.from_dict(throttle)])
    sleeper = Sleeper()
    with client(sandbox, "hubspot", sleeper=sleeper) as api:
        created = api.request(
            "POST", "/crm/v3/objects/companies", json={"properties": {"name": "Throttled"}}
        )
    assert created["id"]
    assert sleeper.waits == [1.0]
    assert statuses(sandbox, "hubspot", total=2) == {"429": 1, "201": 1}


def test_given_server_error_on_create_when_posting_then_not_retried(make_sandbox: Any) -> None:
    fail = {"kind": "server_error", "vendor": "intercom", "method": "POST", "calls": [1]}
    sandbox = make_sandbox(vendors=("intercom",), size=0, faults=[Fault.from_dict(fail)])
    sleeper = Sleeper()
    with client(sandbox, "intercom", sleeper=sleeper) as api, pytest.raises(ServerError):
        api.request("POST", "/contacts", json={"role": "user", "email": "a@example.com"})
    assert sleeper.waits == []


def test_given_persistent_throttle_when_reading_then_gives_up_after_max_tries(
    make_sandbox: Any,
) -> None:
    fault = {"kind": "rate_limit", "vendor": "intercom", "path": "/contacts*"}
    sandbox = make_sandbox(vendors=("intercom",), size=5, faults=[Fault.from_dict(fault)])
    sleeper = Sleeper()
    path, params, route = READ["intercom"]
    with (
        client(sandbox, "intercom", sleeper=sleeper, retry=RetryPolicy(max_tries=3)) as api,
        pytest.raises(RateLimited),
    ):
        api.request("GET", path, params=params, route=route)
    assert len(sleeper.waits) == 2
    assert statuses(sandbox, "intercom", total=3) == {"429": 3}


def test_given_retry_after_beyond_max_time_when_reading_then_gives_up_without_waiting(
    make_sandbox: Any,
) -> None:
    fault = {"kind": "rate_limit", "vendor": "hubspot", "path": "/crm/*", "retry_after": 600}
    sandbox = make_sandbox(vendors=("hubspot",), size=5, faults=[Fault.from_dict(fault)])
    sleeper = Sleeper()
    path, params, route = READ["hubspot"]
    policy = RetryPolicy(max_time=60)
    with (
        client(sandbox, "hubspot", sleeper=sleeper, retry=policy) as api,
        pytest.raises(RateLimited) as caught,
    ):
        api.request("GET", path, params=params, route=route)
    assert caught.value.retry_after == 600
    assert sleeper.waits == []


def test_given_retry_after_as_http_date_when_parsing_then_seconds_until_it() -> None:
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
