"""OAuth token managers against the sandbox's token endpoints: refresh before expiry, once on
401, never twice in a row, and a bad credential names the setting to fix (hubspot/API.md
§1.1, salesforce/API.md §2.1)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from clientkit import API_PATHS, READ, client, hubspot_oauth, salesforce_oauth, statuses

from crm_connectors.auth import StaticToken
from crm_connectors.errors import AuthError, ConfigError
from crm_connectors.hubspot.auth import HubSpotOAuth
from crm_connectors.salesforce.auth import SalesforceOAuth
from crm_connectors.sandbox.faults import Fault
from crm_connectors.secrets import Secret

CANARY = "canary-refresh-5e1d0b7a"
OAUTH_VENDORS = ("hubspot", "salesforce")
TOKEN_ROUTE = {"hubspot": "POST /oauth/v1/token", "salesforce": "POST /services/oauth2/token"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _manager(sandbox: Any, vendor: str, **kw: Any) -> HubSpotOAuth | SalesforceOAuth:
    make: Callable[..., HubSpotOAuth | SalesforceOAuth] = (
        hubspot_oauth if vendor == "hubspot" else salesforce_oauth
    )
    return make(sandbox, **kw)


def _read(api: Any, vendor: str) -> Any:
    path, params, route = READ[vendor]
    return api.request("GET", path, params=params, route=route)


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
def test_given_token_near_expiry_when_reading_then_refreshed_first(
    make_sandbox: Any, vendor: str
) -> None:
    sandbox = make_sandbox(vendors=(vendor,), size=5)
    clock = FakeClock()
    oauth = _manager(
        sandbox,
        vendor,
        clock=clock,
        skew=60,
        **({"session_lifetime": 600} if vendor == "salesforce" else {}),
    )
    with client(sandbox, vendor, creds=oauth) as api:
        _read(api, vendor)
        first = oauth.token()
        clock.now += 500  # HubSpot expires_in 1800, Salesforce assumed 600: still fresh
        _read(api, vendor)
        assert oauth.refreshes == 1
        # Past expiry minus skew (HubSpot: 1800 s from the token response).
        clock.now += (1800 if vendor == "hubspot" else 600) - 500 - 59
        _read(api, vendor)
    assert oauth.refreshes == 2
    assert oauth.token() != first
    assert statuses(sandbox, vendor, TOKEN_ROUTE[vendor], total=2) == {"200": 2}
    assert "401" not in statuses(sandbox, vendor, total=5)


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
def test_given_expired_token_fault_when_reading_then_refreshes_once_and_succeeds(
    make_sandbox: Any, vendor: str
) -> None:
    fault = {"kind": "expired_token", "vendor": vendor, "path": API_PATHS[vendor], "calls": [2]}
    sandbox = make_sandbox(vendors=(vendor,), size=5, faults=[Fault.from_dict(fault)])
    oauth = _manager(sandbox, vendor)
    with client(sandbox, vendor, creds=oauth) as api:
        _read(api, vendor)
        assert _read(api, vendor)
        _read(api, vendor)
    assert oauth.refreshes == 2
    seen = statuses(sandbox, vendor, READ_ROUTE[vendor], total=4)
    assert seen == {"200": 3, "401": 1}


READ_ROUTE = {
    "hubspot": "GET /crm/v3/objects/{t}",
    "salesforce": "GET /services/data/{version}/sobjects",
}


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
def test_given_401_after_refresh_when_reading_then_auth_error_after_one_refresh(
    make_sandbox: Any, vendor: str
) -> None:
    fault = {"kind": "expired_token", "vendor": vendor, "path": API_PATHS[vendor]}
    sandbox = make_sandbox(vendors=(vendor,), size=5, faults=[Fault.from_dict(fault)])
    oauth = _manager(sandbox, vendor)
    with client(sandbox, vendor, creds=oauth) as api, pytest.raises(AuthError) as caught:
        _read(api, vendor)
    assert oauth.refreshes == 2  # the first token, then exactly one renewal
    assert caught.value.setting == f"{vendor}_refresh_token"
    assert statuses(sandbox, vendor, READ_ROUTE[vendor], total=2) == {"401": 2}


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
@pytest.mark.parametrize(
    ("bad", "setting"),
    [("refresh_token", "refresh_token"), ("client_secret", "client_secret")],
)
def test_given_bad_credential_when_refreshing_then_auth_error_names_setting(
    make_sandbox: Any, vendor: str, bad: str, setting: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = make_sandbox(vendors=(vendor,), size=0)
    oauth = _manager(sandbox, vendor, **{bad: Secret(CANARY)})
    with pytest.raises(AuthError) as caught:
        oauth.token()
    err = caught.value
    setting = f"{vendor}_{setting}"  # the setting a user sets
    assert err.setting == setting and f"'{setting}'" in str(err)
    assert err.status == 400
    assert CANARY not in str(err) and CANARY not in caplog.text
    assert CANARY not in repr(oauth.__dict__)


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
def test_given_many_threads_when_token_needed_then_one_refresh(
    make_sandbox: Any, vendor: str
) -> None:
    sandbox = make_sandbox(vendors=(vendor,), size=0)
    oauth = _manager(sandbox, vendor)
    tokens: list[Secret] = []
    threads = [threading.Thread(target=lambda: tokens.append(oauth.token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert oauth.refreshes == 1


def test_given_salesforce_refresh_when_token_issued_then_instance_url_from_response(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=0)
    oauth = salesforce_oauth(sandbox)
    assert oauth.instance_url == sandbox.urls["salesforce"]
    assert str(oauth.token()) == "***" and oauth.token().reveal().startswith("sbx-")


@pytest.mark.parametrize("vendor", OAUTH_VENDORS)
def test_given_missing_refresh_token_when_configuring_then_config_error_names_setting(
    make_sandbox: Any, vendor: str
) -> None:
    sandbox = make_sandbox(vendors=(vendor,), size=0)
    with pytest.raises(ConfigError) as caught:
        _manager(sandbox, vendor, refresh_token=Secret(""))
    setting = f"{vendor}_refresh_token"
    assert caught.value.setting == setting and f"'{setting}'" in str(caught.value)
    with pytest.raises(ConfigError):
        StaticToken("", setting="private_app_token")
