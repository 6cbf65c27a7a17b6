"""The status -> error table, per vendor, over real HTTP against the sandbox; messages never
carry tokens, bodies or field values (hubspot/API.md §1.8-1.9, salesforce/API.md §2.8-2.9,
intercom/API.md §3.7-3.8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from clientkit import ALL, API_PATHS, READ, RULES, Sleeper, client, credentials

from crm_connectors.errors import (
    AuthError,
    CrmError,
    FatalError,
    MissingScopes,
    NotFound,
    QuotaExhausted,
    RateLimited,
    ServerError,
    WriteConflict,
)
from crm_connectors.http import RetryPolicy, classify
from crm_connectors.sandbox.faults import Fault

CANARY = "canary-7f3a9c1e5b2d"
ONCE = RetryPolicy(max_tries=1)


def _read(api: Any, vendor: str) -> Any:
    path, params, route = READ[vendor]
    return api.request("GET", path, params=params, route=route)


@pytest.mark.parametrize("vendor", ALL)
def test_given_unknown_token_when_reading_then_auth_error_names_setting_and_hides_token(
    make_sandbox: Any, vendor: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = make_sandbox(vendors=(vendor,))
    with (
        client(sandbox, vendor, creds=credentials(sandbox, vendor, token=CANARY)) as api,
        pytest.raises(AuthError) as caught,
    ):
        _read(api, vendor)
    err = caught.value
    assert err.status == 401 and err.vendor == vendor
    assert err.setting == "access_token" and "access_token" in str(err)
    assert (
        err.code
        == {
            "hubspot": "INVALID_AUTHENTICATION",
            "salesforce": "INVALID_SESSION_ID",
            "intercom": "unauthorized",
        }[vendor]
    )
    assert CANARY not in str(err) and CANARY not in repr(err.args)
    assert CANARY not in caplog.text


# (vendor, fault, expected class, vendor code)
FAULT_TABLE = [
    ("hubspot", {"kind": "rate_limit"}, RateLimited, "RATE_LIMIT"),
    ("intercom", {"kind": "rate_limit"}, RateLimited, "rate_limit_exceeded"),
    # Salesforce's throttle is 403 REQUEST_LIMIT_EXCEEDED: the daily allocation, fatal
    # [salesforce/API.md §2.8]...
    ("salesforce", {"kind": "rate_limit"}, QuotaExhausted, "REQUEST_LIMIT_EXCEEDED"),
    # ...unless the server says when to come back.
    ("salesforce", {"kind": "rate_limit", "retry_after": 3}, RateLimited, "REQUEST_LIMIT_EXCEEDED"),
    ("hubspot", {"kind": "server_error", "status": 502}, ServerError, ""),
    ("salesforce", {"kind": "server_error", "status": 503}, ServerError, "SERVER_UNAVAILABLE"),
    ("salesforce", {"kind": "server_error", "status": 500}, ServerError, "UNKNOWN_EXCEPTION"),
    ("intercom", {"kind": "server_error", "status": 503}, ServerError, "service_unavailable"),
    ("hubspot", {"kind": "expired_token"}, AuthError, "EXPIRED_AUTHENTICATION"),
    ("intercom", {"kind": "expired_token"}, AuthError, "unauthorized"),
]


@pytest.mark.parametrize(("vendor", "fault", "expected", "code"), FAULT_TABLE)
def test_given_fault_when_reading_then_classified_by_vendor_table(
    make_sandbox: Any, vendor: str, fault: dict[str, Any], expected: type, code: str
) -> None:
    scoped = {**fault, "vendor": vendor, "path": API_PATHS[vendor]}
    sandbox = make_sandbox(vendors=(vendor,), faults=[Fault.from_dict(scoped)])
    with (
        client(sandbox, vendor, sleeper=Sleeper(), retry=ONCE) as api,
        pytest.raises(CrmError) as caught,
    ):
        _read(api, vendor)
    err = caught.value
    assert type(err) is expected
    assert err.code == code
    assert err.route == READ[vendor][2] and err.vendor == vendor
    if "retry_after" in fault:
        assert isinstance(err, RateLimited) and err.retry_after == fault["retry_after"]


NOT_FOUND = {
    "hubspot": ("/crm/v3/objects/companies/99999999999", "OBJECT_NOT_FOUND"),
    "salesforce": ("/sobjects/Account/001000000000000AAA", "NOT_FOUND"),
    "intercom": ("/contacts/ffffffffffffffffffffffff", "not_found"),
}


@pytest.mark.parametrize("vendor", ALL)
def test_given_unknown_id_when_getting_then_not_found_with_id(
    make_sandbox: Any, vendor: str
) -> None:
    sandbox = make_sandbox(vendors=(vendor,))
    path, code = NOT_FOUND[vendor]
    record_id = path.rsplit("/", 1)[1]
    with client(sandbox, vendor) as api, pytest.raises(NotFound) as caught:
        api.request("GET", path, route=f"GET {path.rsplit('/', 1)[0]}/{{id}}")
    assert caught.value.code == code and caught.value.status == 404
    assert record_id not in caught.value.route  # the template, not the concrete path


# A request the vendor rejects whose body holds a value that must not surface anywhere.
BAD_WRITE = {
    "hubspot": (
        "/crm/v3/objects/companies",
        {"properties": {"no_such_property_x": CANARY}},
        "VALIDATION_ERROR",
    ),
    "salesforce": ("/sobjects/Account", {"No_Such_Field__c": CANARY, "Name": "x"}, "INVALID_FIELD"),
    "intercom": ("/contacts", {"role": "user", "email": 42, "name": CANARY}, "parameter_invalid"),
}


@pytest.mark.parametrize("vendor", ALL)
def test_given_rejected_write_with_value_when_posting_then_fatal_without_body_or_value(
    make_sandbox: Any, vendor: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = make_sandbox(vendors=(vendor,))
    path, body, code = BAD_WRITE[vendor]
    with client(sandbox, vendor) as api, pytest.raises(FatalError) as caught:
        api.request("POST", path, json=body, route=f"POST {path}")
    err = caught.value
    assert type(err) is FatalError and err.status == 400 and err.code == code
    assert CANARY not in str(err) and CANARY not in caplog.text


def test_given_daily_limit_reached_when_reading_hubspot_then_quota_exhausted(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("hubspot",), rate_limits="real", options={"hubspot": {"daily_limit": 2}}
    )
    with client(sandbox, "hubspot", sleeper=Sleeper()) as api:
        _read(api, "hubspot")
        _read(api, "hubspot")
        with pytest.raises(QuotaExhausted) as caught:
            _read(api, "hubspot")
    assert caught.value.status == 429 and caught.value.code == "RATE_LIMIT"


def test_given_org_allocation_used_when_reading_salesforce_then_quota_exhausted_not_retried(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",),
        rate_limits="real",
        options={"salesforce": {"daily_api_requests": 2}},
    )
    sleeper = Sleeper()
    with client(sandbox, "salesforce", sleeper=sleeper) as api:
        _read(api, "salesforce")
        _read(api, "salesforce")
        with pytest.raises(QuotaExhausted) as caught:
            _read(api, "salesforce")
    assert caught.value.status == 403 and caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert sleeper.waits == []


def test_given_existing_email_when_creating_intercom_contact_then_write_conflict(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("intercom",))
    with client(sandbox, "intercom") as api:
        api.request("POST", "/contacts", json={"role": "user", "email": "dup@example.com"})
        with pytest.raises(WriteConflict) as caught:
            api.request("POST", "/contacts", json={"role": "user", "email": "dup@example.com"})
    assert caught.value.status == 409 and "dup@example.com" not in str(caught.value)


# Rows the sandbox does not emulate, from the documented bodies [hubspot/API.md §1.1, §1.9,
# salesforce/API.md §2.8].
@pytest.mark.parametrize(
    ("vendor", "status", "body", "headers_retry_after", "expected"),
    [
        (
            "hubspot",
            403,
            {
                "status": "error",
                "category": "MISSING_SCOPES",
                "errors": [{"context": {"requiredGranularScopes": ["crm.objects.deals.read"]}}],
            },
            None,
            MissingScopes,
        ),
        (
            "hubspot",
            477,
            {"status": "error", "message": "Migration in progress"},
            30.0,
            ServerError,
        ),
        ("hubspot", 502, None, None, ServerError),  # HTML body: not JSON
        (
            "salesforce",
            403,
            [
                {
                    "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                }
            ],
            None,
            RateLimited,
        ),
        (
            "salesforce",
            403,
            [{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}],
            None,
            MissingScopes,
        ),
    ],
)
def test_given_documented_body_when_classifying_then_error_class(
    vendor: str, status: int, body: Any, headers_retry_after: float | None, expected: type
) -> None:
    err = classify(RULES[vendor], status, body, retry_after=headers_retry_after, route="GET /x")
    assert type(err) is expected
    if isinstance(err, MissingScopes) and vendor == "hubspot":
        assert err.scopes == ("crm.objects.deals.read",)
        assert "crm.objects.deals.read" in str(err)
    if status == 477:
        assert isinstance(err, ServerError) and err.retry_after == 30.0


def test_given_host_relative_link_when_following_then_base_path_not_doubled(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=5)
    with client(sandbox, "salesforce") as api:
        first = api.request("GET", "/query", params={"q": "SELECT Id FROM Account"})
        assert first["totalSize"] >= 1
        again = api.request("GET", api.absolute("/services/data/v66.0/sobjects"))
    assert again["sobjects"]
