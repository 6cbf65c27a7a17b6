"""What the Salesforce and Intercom peer taps of the bench need from the sandbox, over real
loopback HTTP: requests shaped as singer-io tap-salesforce and tap-intercom send them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

MakeSandbox = Callable[..., Sandbox]
START = 946_684_800  # 2000-01-01T00:00:00Z, before every seeded record


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox(vendors=("salesforce", "intercom"), size=40)


@pytest.fixture
def intercom(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": f"Bearer {DEFAULT_CREDENTIALS['intercom']['access_token']}",
        "Accept": "application/json",
        "Intercom-Version": "2.12",  # what tap-intercom 2.2.5 sends
    }
    with httpx.Client(base_url=sandbox.urls["intercom"], headers=headers, timeout=30) as client:
        yield client


def _search_ids(api: httpx.Client, start: Any) -> list[str]:
    """Every contact id of tap-intercom's contacts search from ``start``, page by page."""
    body: dict[str, Any] = {
        "pagination": {"per_page": 150},
        "query": {"operator": "OR", "value": [
            {"field": "updated_at", "operator": ">", "value": start},
            {"field": "updated_at", "operator": "=", "value": start},
        ]},
        "sort": {"field": "updated_at", "order": "ascending"},
    }  # fmt: skip
    ids: list[str] = []
    while True:
        resp = api.post("/contacts/search", json=body)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        ids += [c["id"] for c in page["data"]]
        nxt = (page.get("pages") or {}).get("next")
        if not nxt:
            return ids
        body["pagination"]["starting_after"] = nxt["starting_after"]


def _listed_ids(api: httpx.Client) -> set[str]:
    ids: set[str] = set()
    params: dict[str, Any] = {"per_page": 150}
    while True:
        page = api.get("/contacts", params=params).json()
        ids |= {c["id"] for c in page["data"]}
        nxt = (page.get("pages") or {}).get("next")
        if not nxt:
            return ids
        params["starting_after"] = nxt["starting_after"]


def test_given_contacts_when_searching_from_a_start_date_sent_as_a_whole_float_then_every_contact_matches(  # noqa: E501
    intercom: httpx.Client,
) -> None:
    # Given: the workspace's contacts, all updated after the start date
    listed = _listed_ids(intercom)
    assert listed

    # When: tap-intercom's search, its start date a datetime.timestamp() float, and as an integer
    with_float = _search_ids(intercom, float(START))
    with_int = _search_ids(intercom, START)

    # Then: both find every contact once, in the same order
    assert with_float == with_int
    assert len(with_float) == len(set(with_float))
    assert set(with_float) == listed


def test_given_a_fractional_timestamp_when_searching_then_400_parameter_invalid(
    intercom: httpx.Client,
) -> None:
    # Given/When: a value that is no integer, string, boolean or array [spec]
    resp = intercom.post(
        "/contacts/search",
        json={"query": {"field": "updated_at", "operator": ">", "value": START + 0.5}},
    )

    # Then: it stays rejected
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["code"] == "parameter_invalid"


def test_given_refresh_token_when_tap_salesforce_logs_in_and_queries_accounts_then_it_reads_every_account(  # noqa: E501
    sandbox: Sandbox,
) -> None:
    # Given: the sandbox's OAuth client (tap-salesforce posts a form to /services/oauth2/token)
    creds = DEFAULT_CREDENTIALS["salesforce"]
    with httpx.Client(timeout=30) as client:
        token = client.post(
            f"{sandbox.urls['salesforce']}/services/oauth2/token",
            data={"grant_type": "refresh_token", "client_id": creds["client_id"],
                  "client_secret": creds["client_secret"],
                  "refresh_token": creds["refresh_token"]},
        )  # fmt: skip
        assert token.status_code == 200
        auth = token.json()
        # The tap sends every later call to the instance_url of the token response.
        instance = auth["instance_url"]
        assert instance == sandbox.urls["salesforce"]
        headers = {"Authorization": f"Bearer {auth['access_token']}"}

        # When: its REST query of Account, from a start date before every record, page by page
        soql = (
            "SELECT Id,Name,SystemModstamp FROM Account "
            "WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp ASC"
        )
        page = client.get(
            f"{instance}/services/data/v61.0/queryAll", params={"q": soql}, headers=headers
        )
        assert page.status_code == 200, page.text
        assert "Sforce-Limit-Info" in page.headers  # the tap checks its quota from it
        body = page.json()
        ids = [r["Id"] for r in body["records"]]
        while not body["done"]:
            body = client.get(f"{instance}{body['nextRecordsUrl']}", headers=headers).json()
            ids += [r["Id"] for r in body["records"]]
        count = client.get(
            f"{instance}/services/data/v61.0/queryAll",
            params={"q": "SELECT COUNT() FROM Account"},
            headers=headers,
        ).json()

    # Then: every account, once
    assert ids
    assert len(ids) == len(set(ids)) == count["totalSize"]
