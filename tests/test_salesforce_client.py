"""Fidelity with simple-salesforce, which builds https:// URLs: the sandbox serves TLS."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.emulators import emulators

CREDS = DEFAULT_CREDENTIALS["salesforce"]
PAGE = {"Sforce-Query-Options": "batchSize=200"}


def _connect(sandbox: Any, session_id: str | None = None) -> Salesforce:
    cert = Path(str(sandbox.config.db_path) + ".tls") / "cert.pem"
    session = requests.Session()
    session.verify = str(cert)
    # REQUESTS_CA_BUNDLE in the environment would override session.verify (a requests quirk).
    session.trust_env = False
    base = sandbox.urls["salesforce"]
    if session_id is None:
        r = session.post(
            f"{base}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": CREDS["client_id"],
                "client_secret": CREDS["client_secret"],
                "refresh_token": CREDS["refresh_token"],
            },
        )
        r.raise_for_status()
        assert r.json()["instance_url"] == base
        session_id = r.json()["access_token"]
    return Salesforce(instance_url=base, session_id=session_id, session=session, version="66.0")


@pytest.fixture
def big(make_sandbox: Any) -> Any:
    return make_sandbox(vendors=("salesforce",), size=200, tls=True)


@pytest.fixture
def sf(make_sandbox: Any, profile: str) -> Salesforce:
    return _connect(make_sandbox(vendors=("salesforce",), size=40, tls=True, profile=profile))


@pytest.fixture
def names(profile: str) -> dict[str, Any]:
    """Role -> the field of that world's org (the emulator's field mapping)."""
    return dict(emulators()["salesforce"].field_mappings[profile])


def test_given_many_contacts_when_query_all_then_every_page_followed(big: Any) -> None:
    sf = _connect(big)
    first = sf.query("SELECT Id FROM Contact", headers=PAGE)
    assert first["done"] is False and len(first["records"]) == 200
    everything = sf.query_all("SELECT Id, Email FROM Contact", headers=PAGE)
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == len(set(ids)) == first["totalSize"]
    lazily = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Contact", headers=PAGE)]
    assert sorted(lazily) == sorted(ids)
    assert "api-usage" in sf.api_usage


def test_given_deleted_accounts_when_include_deleted_then_seen(sf: Salesforce) -> None:
    victim = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    sf.Account.delete(victim)
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
    every = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)["records"]
    assert victim not in live
    assert {"Id": victim, "IsDeleted": True} in [
        {"Id": r["Id"], "IsDeleted": r["IsDeleted"]} for r in every
    ]


def test_given_describe_when_called_then_custom_external_id_listed(
    sf: Salesforce, names: dict[str, Any], profile: str
) -> None:
    desc = sf.Account.describe()
    ext = next(f for f in desc["fields"] if f["name"] == names["external_id"])
    assert ext["externalId"] is True and ext["custom"] is True
    objects = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Case", "Task", "User"} <= objects
    assert ("NPS_Response__c" in objects) == (profile == "seeded")  # (no NPS object elsewhere)


def test_given_upsert_by_external_id_when_reading_back_then_values_stored(
    sf: Salesforce, names: dict[str, Any]
) -> None:
    uid, seats = names["external_id"], names["seats"]
    status = sf.Account.upsert(f"{uid}/ACC-5550001", {"Name": "Client Co"})
    assert status == 201
    status = sf.Account.upsert(f"{uid}/ACC-5550001", {seats: 42})
    assert status == 200
    got = sf.Account.get_by_custom_id(uid, "ACC-5550001")
    assert got["Name"] == "Client Co" and got[seats] == 42


def test_given_collection_update_when_restful_then_every_row_updated(
    sf: Salesforce, names: dict[str, Any]
) -> None:
    plan = names["plan"]
    rows = sf.query("SELECT Id FROM Account LIMIT 3")["records"]
    records = [{"attributes": {"type": "Account"}, "id": r["Id"], plan: "growth"} for r in rows]
    result = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records}
    )
    assert [r["success"] for r in result] == [True, True, True]
    ids = "','".join(r["Id"] for r in rows)
    after = sf.query(f"SELECT {plan} FROM Account WHERE Id IN ('{ids}')")["records"]
    assert [r[plan] for r in after] == ["growth"] * 3


def test_given_bulk2_query_when_run_then_csv_has_every_account(sf: Salesforce) -> None:
    total = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    chunks = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=10, wait=0))
    rows = [row for chunk in chunks for row in csv.DictReader(io.StringIO(chunk))]
    assert len(chunks) == -(-total // 10)
    assert len(rows) == total and all(r["Id"].startswith("001") for r in rows)


def test_given_limits_when_called_then_daily_api_requests_reported(sf: Salesforce) -> None:
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert 0 < limits["DailyApiRequests"]["Remaining"] < 100_000
    # and the other documented allocations a client checks (Bulk API 1.0's batches) are there,
    # each as Max and Remaining
    assert {"DailyBulkApiBatches", "DailyBulkV2QueryJobs", "HourlyODataCallout"} <= set(limits)
    assert all(set(v) == {"Max", "Remaining"} for v in limits.values())


def test_given_error_statuses_when_calling_then_client_exceptions(make_sandbox: Any) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=10, tls=True)
    sf = _connect(sandbox)
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("0015g000000ZZZZAAA")
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Nope FROM Account")
    with pytest.raises(SalesforceExpiredSession):
        _connect(sandbox, session_id="not-a-session").query("SELECT Id FROM Account")
