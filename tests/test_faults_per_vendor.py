"""Every fault kind, and every bad request, looks the way each vendor's API makes it look.

One test body per behaviour, run against each CRM (the shapes are in hubspot/API.md §1.8-1.9,
salesforce/API.md §2.8-2.9, intercom/API.md §3.7-3.8).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault

ALL = ("hubspot", "salesforce", "intercom")

#: An authenticated read, and a JSON-body write, for each vendor.
READ = {
    "hubspot": "/crm/v3/objects/companies?limit=2",
    "salesforce": "/services/data/v66.0/sobjects",
    "intercom": "/contacts?per_page=2",
}
WRITE = {
    "hubspot": "/crm/v3/objects/companies/search",
    "salesforce": "/services/data/v66.0/sobjects/Account",
    "intercom": "/contacts/search",
}


def _envelope(vendor: str, body: Any) -> str:
    """The vendor's error code from its own error envelope; fails on any other shape."""
    if vendor == "hubspot":
        assert body["status"] == "error" and isinstance(body["message"], str)
        assert isinstance(body["correlationId"], str)
        return str(body.get("errorType") or body.get("category") or "")
    if vendor == "salesforce":
        assert isinstance(body, list) and body
        assert isinstance(body[0]["message"], str)
        return str(body[0]["errorCode"])
    assert body["type"] == "error.list" and body["errors"]
    assert "request_id" in body
    return str(body["errors"][0]["code"])


@pytest.fixture(params=ALL)
def vendor_sandbox(request: pytest.FixtureRequest, make_sandbox: Any) -> tuple[str, Sandbox, dict]:
    vendor = request.param
    sandbox = make_sandbox(vendors=(vendor,), size=12)
    token, _ = sandbox.ctx.tokens.issue_access(vendor, ttl=600)
    headers = {"Authorization": f"Bearer {token}"}
    if vendor == "intercom":
        headers["Intercom-Version"] = "2.14"
    return vendor, sandbox, headers


def _fault(sandbox: Sandbox, vendor: str, **fields: Any) -> None:
    sandbox.ctx.faults.add(Fault.from_dict({"vendor": vendor, **fields}))


def test_given_clean_sandbox_when_reading_then_ok(vendor_sandbox: Any) -> None:
    vendor, sandbox, headers = vendor_sandbox
    assert httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers).status_code == 200


@pytest.mark.parametrize("retry_after", [None, 2])
def test_given_rate_limit_fault_when_reading_then_vendor_throttle_shape(
    vendor_sandbox: Any, retry_after: int | None
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    _fault(sandbox, vendor, kind="rate_limit", max_times=1, retry_after=retry_after)
    resp = httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers)
    # Salesforce signals an exhausted allocation with 403, never 429 [salesforce/API.md §2.8].
    assert resp.status_code == (403 if vendor == "salesforce" else 429)
    code = _envelope(vendor, resp.json())
    assert (
        code
        == {
            "hubspot": "RATE_LIMIT",
            "salesforce": "REQUEST_LIMIT_EXCEEDED",
            "intercom": "rate_limit_exceeded",
        }[vendor]
    )
    assert resp.headers.get("Retry-After") == (None if retry_after is None else str(retry_after))
    if vendor == "hubspot":
        assert resp.json()["policyName"] in {"TEN_SECONDLY_ROLLING", "DAILY", "SECONDLY"}
    assert httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers).status_code == 200


def test_given_rate_limit_fault_when_salesforce_issues_a_token_then_the_login_is_not_throttled(
    make_sandbox: Any,
) -> None:
    # Given a rate_limit fault on every Salesforce request
    from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

    sandbox = make_sandbox(vendors=("salesforce",), size=4)
    _fault(sandbox, "salesforce", kind="rate_limit")
    creds = DEFAULT_CREDENTIALS["salesforce"]
    # when a client logs in: the token endpoint is outside the API allocation
    # [salesforce/API.md §2.8], so it answers with a token
    login = httpx.post(
        sandbox.urls["salesforce"] + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
        },
    )
    assert login.status_code == 200, login.text
    # then the REST call with that token is the one throttled
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    resp = httpx.get(sandbox.urls["salesforce"] + READ["salesforce"], headers=headers)
    assert resp.status_code == 403 and _envelope("salesforce", resp.json()) == (
        "REQUEST_LIMIT_EXCEEDED"
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_given_server_error_fault_when_reading_then_that_status_in_vendor_shape(
    vendor_sandbox: Any, status: int
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    _fault(sandbox, vendor, kind="server_error", status=status, max_times=1)
    resp = httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers)
    assert resp.status_code == status
    if resp.headers.get("content-type", "").startswith("application/json"):
        _envelope(vendor, resp.json())
    assert "Traceback" not in resp.text


def test_given_expired_token_fault_when_reading_then_401_until_a_new_token(
    vendor_sandbox: Any,
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    url = sandbox.urls[vendor] + READ[vendor]
    _fault(sandbox, vendor, kind="expired_token", max_times=1)
    first = httpx.get(url, headers=headers)
    assert first.status_code == 401
    assert (
        _envelope(vendor, first.json())
        in {
            "hubspot": {"EXPIRED_AUTHENTICATION", "INVALID_AUTHENTICATION"},
            "salesforce": {"INVALID_SESSION_ID"},
            "intercom": {"unauthorized"},
        }[vendor]
    )
    assert httpx.get(url, headers=headers).status_code == 401
    fresh, _ = sandbox.ctx.tokens.issue_access(vendor, ttl=600)
    assert httpx.get(url, headers={**headers, "Authorization": f"Bearer {fresh}"}).is_success


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_given_connection_fault_when_reading_then_client_sees_a_broken_response(
    vendor_sandbox: Any, kind: str
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    _fault(sandbox, vendor, kind=kind, max_times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers).json()
    assert httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers).status_code == 200


def test_given_slow_fault_when_reading_then_response_arrives_after_the_delay(
    vendor_sandbox: Any,
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    _fault(sandbox, vendor, kind="slow", delay=0.6, max_times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sandbox.urls[vendor] + READ[vendor], headers=headers, timeout=0.2)


def test_given_probability_fault_when_reading_many_times_then_about_that_share_fails(
    vendor_sandbox: Any,
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    _fault(sandbox, vendor, kind="server_error", probability=0.3)
    with httpx.Client(headers=headers) as client:
        statuses = [client.get(sandbox.urls[vendor] + READ[vendor]).status_code for _ in range(200)]
    failed = sum(s == 503 for s in statuses)
    assert 30 <= failed <= 90, failed
    assert set(statuses) == {200, 503}


def test_given_malformed_json_when_writing_then_vendor_400(vendor_sandbox: Any) -> None:
    vendor, sandbox, headers = vendor_sandbox
    resp = httpx.post(
        sandbox.urls[vendor] + WRITE[vendor],
        content=b'{"filterGroups": [',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    _envelope(vendor, resp.json())


def test_given_no_token_when_reading_then_vendor_401(vendor_sandbox: Any) -> None:
    vendor, sandbox, headers = vendor_sandbox
    resp = httpx.get(
        sandbox.urls[vendor] + READ[vendor],
        headers={k: v for k, v in headers.items() if k != "Authorization"},
    )
    assert resp.status_code == 401
    _envelope(vendor, resp.json())


def test_given_unknown_route_and_wrong_method_when_requesting_then_vendor_404_and_405(
    vendor_sandbox: Any,
) -> None:
    vendor, sandbox, headers = vendor_sandbox
    base = sandbox.urls[vendor]
    missing = httpx.get(base + READ[vendor].split("?")[0] + "/no/such/thing/here", headers=headers)
    assert missing.status_code == 404
    _envelope(vendor, missing.json())
    wrong = httpx.request("TRACE", base + READ[vendor].split("?")[0], headers=headers)
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["Allow"]
    _envelope(vendor, wrong.json())
