"""Contract tests of the Salesforce emulator over real loopback HTTP [salesforce/API.md §2]."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from typing import Any

import httpx
import pytest

from crm_connectors.salesforce.emulator.model import normalize_id, parse_datetime
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.faults import Fault

V = "/services/data/v66.0"
CREDS = DEFAULT_CREDENTIALS["salesforce"]


def _token(base: str) -> str:
    r = httpx.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CREDS["client_id"],
            "client_secret": CREDS["client_secret"],
            "refresh_token": CREDS["refresh_token"],
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _client(sandbox: Any) -> httpx.Client:
    base = sandbox.urls["salesforce"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {_token(base)}"})


@pytest.fixture
def sf(make_sandbox: Any) -> httpx.Client:
    return _client(make_sandbox(vendors=("salesforce",), size=40))


def _query(client: httpx.Client, soql: str, *, all_rows: bool = False, **kw: Any) -> httpx.Response:
    return client.get(f"{V}/{'queryAll' if all_rows else 'query'}", params={"q": soql}, **kw)


def _error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert isinstance(body, list) and len(body) == 1, body
    return dict(body[0])


# -- auth ---------------------------------------------------------------------------------------


def test_given_refresh_token_when_exchanging_then_session_and_own_instance_url_returned(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=0)
    base = sandbox.urls["salesforce"]
    r = httpx.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CREDS["client_id"],
            "client_secret": CREDS["client_secret"],
            "refresh_token": CREDS["refresh_token"],
        },
    )
    body = r.json()
    assert r.status_code == 200
    assert body["instance_url"] == base
    assert body["token_type"] == "Bearer"
    assert {"access_token", "id", "issued_at", "signature", "scope"} <= set(body)
    assert "expires_in" not in body
    limits = httpx.get(
        f"{base}{V}/limits", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert limits.status_code == 200


def test_given_unknown_refresh_token_when_exchanging_then_oauth_invalid_grant(
    make_sandbox: Any,
) -> None:
    base = make_sandbox(vendors=("salesforce",), size=0).urls["salesforce"]
    r = httpx.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CREDS["client_id"],
            "client_secret": CREDS["client_secret"],
            "refresh_token": "nope",
        },
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def test_given_no_or_expired_session_when_calling_then_401_invalid_session_id(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=0, options={"salesforce": {"session_ttl": 0.3}}
    )
    base = sandbox.urls["salesforce"]
    anonymous = httpx.get(f"{base}{V}/limits")
    assert anonymous.status_code == 401
    assert _error(anonymous) == {
        "message": "Session expired or invalid",
        "errorCode": "INVALID_SESSION_ID",
    }
    token = _token(base)
    sandbox.ctx.clock.advance(0.5)
    expired = httpx.get(f"{base}{V}/limits", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert _error(expired)["errorCode"] == "INVALID_SESSION_ID"


def test_given_versions_listing_when_called_then_no_auth_and_no_limit_header(
    make_sandbox: Any,
) -> None:
    base = make_sandbox(vendors=("salesforce",), size=0).urls["salesforce"]
    r = httpx.get(f"{base}/services/data/")
    assert r.status_code == 200
    assert {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"} in r.json()
    assert "Sforce-Limit-Info" not in r.headers
    assert httpx.get(f"{base}/services/data/v99.0/limits").status_code == 404


# -- query and pagination -----------------------------------------------------------------------


def test_given_batch_size_when_paging_contacts_then_every_record_exactly_once(
    make_sandbox: Any,
) -> None:
    client = _client(make_sandbox(vendors=("salesforce",), size=200))
    headers = {"Sforce-Query-Options": "batchSize=100"}  # below the minimum: served as 200
    page = _query(client, "SELECT Id, LastName FROM Contact", headers=headers).json()
    total, seen, pages = page["totalSize"], [], 0
    assert total > 200
    while True:
        pages += 1
        seen += [r["Id"] for r in page["records"]]
        assert all(r["attributes"]["type"] == "Contact" for r in page["records"])
        if page["done"]:
            assert "nextRecordsUrl" not in page
            break
        assert len(page["records"]) == 200
        page = client.get(page["nextRecordsUrl"], headers=headers).json()
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 200)


def test_given_same_locator_when_fetched_twice_then_same_page(make_sandbox: Any) -> None:
    sf = _client(make_sandbox(vendors=("salesforce",), size=200))
    first = _query(sf, "SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    body = first.json()
    assert body["done"] is False
    again = [sf.get(body["nextRecordsUrl"]).json()["records"] for _ in range(2)]
    assert again[0] == again[1]


def test_given_locator_idle_past_ttl_when_fetching_then_invalid_query_locator(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=200, options={"salesforce": {"query_locator_ttl": 0.3}}
    )
    client = _client(sandbox)
    body = _query(
        client, "SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"}
    ).json()
    assert body["done"] is False
    sandbox.ctx.clock.advance(0.6)
    r = client.get(body["nextRecordsUrl"])
    assert r.status_code == 400
    assert _error(r) == {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    assert client.get(f"{V}/query/01g5g0000000999AAA-200").status_code == 400


def test_given_modstamp_filter_with_offset_literal_when_querying_then_only_newer_rows(
    sf: httpx.Client,
) -> None:
    everything = _query(sf, "SELECT Id, SystemModstamp FROM Account").json()["records"]
    stamps = sorted(parse_datetime(r["SystemModstamp"]) or 0 for r in everything)
    pivot = stamps[len(stamps) // 2]
    literal = dt.datetime.fromtimestamp(pivot / 1000, dt.timezone(dt.timedelta(hours=2)))
    soql = (
        "SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp > "
        f"{literal.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}+02:00 ORDER BY SystemModstamp ASC, Id ASC"
    )
    body = _query(sf, soql).json()
    got = [parse_datetime(r["SystemModstamp"]) or 0 for r in body["records"]]
    assert got == sorted(s for s in stamps if s > pivot)
    assert body["totalSize"] == len(got)


def test_given_where_with_or_not_in_like_when_querying_then_matches_python_filter(
    sf: httpx.Client,
) -> None:
    rows = _query(sf, "SELECT Id, Name, Industry, Seats__c FROM Account").json()["records"]
    soql = (
        "SELECT Id FROM Account WHERE (Industry IN ('Technology', 'Finance') OR Seats__c >= 100)"
        " AND NOT Name LIKE 'a%' ORDER BY Name DESC NULLS LAST LIMIT 50"
    )
    got = {r["Id"] for r in _query(sf, soql).json()["records"]}
    want = {
        r["Id"]
        for r in rows
        if (r["Industry"] in ("Technology", "Finance") or (r["Seats__c"] or 0) >= 100)
        and not r["Name"].lower().startswith("a")
    }
    assert got == want


def test_given_count_query_when_querying_then_total_size_only(sf: httpx.Client) -> None:
    listed = _query(sf, "SELECT Id FROM Account").json()["totalSize"]
    body = _query(sf, "SELECT COUNT() FROM Account").json()
    assert body == {"totalSize": listed, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
        ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token"),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Phone = 'b' OR Id = null",
            "MALFORMED_QUERY",
            "OR",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
    ],
)
def test_given_bad_soql_when_querying_then_salesforce_error_array(
    sf: httpx.Client, soql: str, code: str, fragment: str
) -> None:
    r = _query(sf, soql)
    assert r.status_code == 400
    err = _error(r)
    assert err["errorCode"] == code
    assert fragment in err["message"]


def test_given_deleted_record_when_query_and_query_all_then_only_query_all_sees_it(
    sf: httpx.Client,
) -> None:
    victim = _query(sf, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    assert sf.delete(f"{V}/sobjects/Account/{victim}").status_code == 204
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{victim}'"
    assert _query(sf, soql).json()["totalSize"] == 0
    assert _query(sf, soql, all_rows=True).json()["records"][0]["IsDeleted"] is True
    assert sf.get(f"{V}/sobjects/Account/{victim}").status_code == 404
    now = dt.datetime.now(dt.timezone.utc)
    deleted = sf.get(
        f"{V}/sobjects/Account/deleted/",
        params={
            "start": (now - dt.timedelta(hours=1)).isoformat(),
            "end": (now + dt.timedelta(minutes=2)).isoformat(),
        },
    ).json()
    assert victim in [d["id"] for d in deleted["deletedRecords"]]


def test_given_seeded_merged_account_when_query_all_then_deleted_with_master(
    make_sandbox: Any,
) -> None:
    client = _client(make_sandbox(vendors=("salesforce",), size=600))
    soql = "SELECT Id, MasterRecordId FROM Account WHERE IsDeleted = true"
    rows = _query(client, soql, all_rows=True).json()["records"]
    assert rows, "the world should hold deleted or merged accounts at this size"
    assert _query(client, soql).json()["totalSize"] == 0
    for row in rows:
        if row["MasterRecordId"]:
            assert row["MasterRecordId"].startswith("001")


# -- records ------------------------------------------------------------------------------------


def test_given_15_and_lowercase_18_char_ids_when_reading_then_same_record(sf: httpx.Client) -> None:
    rid = _query(sf, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    assert len(rid) == 18 and normalize_id(rid[:15]) == rid
    for variant in (rid[:15], rid[:15] + rid[15:].lower()):
        r = sf.get(f"{V}/sobjects/Account/{variant}", params={"fields": "Id,Name"})
        assert r.status_code == 200
        assert r.json()["Id"] == rid


def test_given_external_id_when_upserting_then_created_then_updated(sf: httpx.Client) -> None:
    url = f"{V}/sobjects/Account/External_Account_Id__c/ACC-9990001"
    first = sf.patch(url, json={"Name": "Upsert Co", "Seats__c": 12})
    assert first.status_code == 201 and first.json()["created"] is True
    second = sf.patch(url, json={"Seats__c": 13})
    assert second.status_code == 200
    assert second.json() == {
        "id": first.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    got = sf.get(f"{V}/sobjects/Account/{first.json()['id']}").json()
    assert got["Seats__c"] == 13 and got["Name"] == "Upsert Co"
    not_ext = sf.patch(f"{V}/sobjects/Account/Name/Foo", json={"Phone": "1"})
    assert not_ext.status_code == 404
    in_body = sf.patch(url, json={"External_Account_Id__c": "ACC-9990001"})
    assert in_body.status_code == 400


def test_given_duplicate_external_id_when_creating_then_duplicate_value(sf: httpx.Client) -> None:
    ext = _query(sf, "SELECT External_Account_Id__c FROM Account LIMIT 1").json()["records"][0]
    r = sf.post(
        f"{V}/sobjects/Account",
        json={"Name": "Dup", **{k: v for k, v in ext.items() if k != "attributes"}},
    )
    assert r.status_code == 400
    assert _error(r)["errorCode"] == "DUPLICATE_VALUE"


def test_given_bad_writes_when_creating_then_field_errors(sf: httpx.Client) -> None:
    missing = sf.post(f"{V}/sobjects/Contact", json={"FirstName": "A"})
    assert _error(missing) == {
        "message": "Required fields are missing: [LastName]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["LastName"],
    }
    readonly = sf.post(f"{V}/sobjects/Account", json={"Name": "A", "CreatedDate": "2026-01-01"})
    assert _error(readonly)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    unknown = sf.post(f"{V}/sobjects/Account", json={"Name": "A", "Nope__c": 1})
    assert _error(unknown)["errorCode"] == "INVALID_FIELD"


def test_given_malformed_json_when_posting_then_json_parser_error(sf: httpx.Client) -> None:
    r = sf.post(
        f"{V}/sobjects/Account", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert _error(r)["errorCode"] == "JSON_PARSER_ERROR"


def test_given_wrong_method_when_calling_then_405_with_allow(sf: httpx.Client) -> None:
    r = sf.put(f"{V}/sobjects/Account/0015g0000000001AAA", json={})
    assert r.status_code == 405
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}
    assert _error(r)["errorCode"] == "METHOD_NOT_ALLOWED"


def test_given_unknown_resource_when_calling_then_404_not_found(sf: httpx.Client) -> None:
    r = sf.get(f"{V}/sobjects/Account/0015g000000ZZZZAAA")
    assert r.status_code == 404
    assert _error(r) == {
        "message": "The requested resource does not exist",
        "errorCode": "NOT_FOUND",
    }


# -- collections and composite ------------------------------------------------------------------


def test_given_201_records_when_creating_collection_then_400(sf: httpx.Client) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(201)]
    r = sf.post(f"{V}/composite/sobjects", json={"allOrNone": False, "records": records})
    assert r.status_code == 400
    assert _error(r)["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_given_all_or_none_with_one_bad_row_when_creating_then_all_rolled_back(
    sf: httpx.Client,
) -> None:
    before = _query(sf, "SELECT COUNT() FROM Account").json()["totalSize"]
    records = [
        {"attributes": {"type": "Account"}, "Name": "Good"},
        {"attributes": {"type": "Account"}},  # Name is required
    ]
    r = sf.post(f"{V}/composite/sobjects", json={"allOrNone": True, "records": records})
    assert r.status_code == 200
    rows = r.json()
    assert [row["success"] for row in rows] == [False, False]
    assert rows[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rows[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert _query(sf, "SELECT COUNT() FROM Account").json()["totalSize"] == before
    partial = sf.post(
        f"{V}/composite/sobjects", json={"allOrNone": False, "records": records}
    ).json()
    assert [row["success"] for row in partial] == [True, False]


def test_given_collection_upsert_when_mixed_new_and_existing_then_created_flags(
    sf: httpx.Client,
) -> None:
    existing = _query(sf, "SELECT External_Account_Id__c FROM Account LIMIT 1").json()["records"][0]
    ext = existing["External_Account_Id__c"]
    records = [
        {"attributes": {"type": "Account"}, "External_Account_Id__c": ext, "Seats__c": 5},
        {"attributes": {"type": "Account"}, "External_Account_Id__c": "ACC-7770001", "Name": "New"},
    ]
    r = sf.patch(
        f"{V}/composite/sobjects/Account/External_Account_Id__c", json={"records": records}
    )
    assert [row["created"] for row in r.json()] == [False, True]
    ids = ",".join(row["id"] for row in r.json())
    got = sf.get(
        f"{V}/composite/sobjects/Account", params={"ids": ids, "fields": "Seats__c,Name"}
    ).json()
    assert got[0]["Seats__c"] == 5 and got[1]["Name"] == "New"


def test_given_composite_reference_when_posting_then_child_gets_parent_id(sf: httpx.Client) -> None:
    body = {
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acc",
             "body": {"Name": "P"}},
            {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "con",
             "body": {"LastName": "C", "AccountId": "@{acc.id}"}},
        ]
    }  # fmt: skip
    out = sf.post(f"{V}/composite", json=body).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [201, 201]
    contact = sf.get(f"{V}/sobjects/Contact/{out[1]['body']['id']}").json()
    assert contact["AccountId"] == out[0]["body"]["id"]


# -- describe and tooling -----------------------------------------------------------------------


def test_given_tooling_custom_field_when_created_then_in_describe_and_queryable(
    sf: httpx.Client,
) -> None:
    body = {
        "FullName": "Account.Health_Score__c",
        "Metadata": {"label": "Health Score", "type": "Number", "precision": 5, "scale": 1},
    }
    r = sf.post(f"{V}/tooling/sobjects/CustomField", json=body)
    assert r.status_code == 201 and r.json()["id"].startswith("00N")
    fields = {f["name"]: f for f in sf.get(f"{V}/sobjects/Account/describe").json()["fields"]}
    assert fields["Health_Score__c"]["type"] == "double" and fields["Health_Score__c"]["custom"]
    rid = _query(sf, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    assert sf.patch(f"{V}/sobjects/Account/{rid}", json={"Health_Score__c": 8.5}).status_code == 204
    hits = _query(sf, "SELECT Id, Health_Score__c FROM Account WHERE Health_Score__c > 8").json()
    assert hits["records"][0]["Health_Score__c"] == 8.5
    dup = sf.post(f"{V}/tooling/sobjects/CustomField", json=body)
    assert dup.status_code == 400 and _error(dup)["errorCode"] == "DUPLICATE_DEVELOPER_NAME"


def test_given_describe_when_reading_then_external_id_and_types_present(sf: httpx.Client) -> None:
    desc = sf.get(f"{V}/sobjects/Account/describe").json()
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["External_Account_Id__c"]["externalId"] is True
    assert fields["External_Account_Id__c"]["unique"] is True
    assert fields["Id"]["type"] == "id" and fields["SystemModstamp"]["type"] == "datetime"
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert desc["keyPrefix"] == "001"


def test_given_if_modified_since_after_schema_change_when_describing_then_304(
    sf: httpx.Client,
) -> None:
    first = sf.get(f"{V}/sobjects")
    assert first.json()["maxBatchSize"] == 200
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert sf.get(f"{V}/sobjects", headers={"If-Modified-Since": later}).status_code == 304
    old = email.utils.formatdate(time.time() - 86_400 * 365, usegmt=True)
    assert sf.get(f"{V}/sobjects", headers={"If-Modified-Since": old}).status_code == 200


# -- limits and faults --------------------------------------------------------------------------


def test_given_small_daily_allocation_when_exhausted_then_403_request_limit_exceeded(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=0, rate_limits="real",
        options={"salesforce": {"daily_api_requests": 3}},
    )  # fmt: skip
    client = _client(sandbox)
    usage = [client.get(f"{V}/limits").headers["Sforce-Limit-Info"] for _ in range(3)]
    assert usage == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    r = client.get(f"{V}/limits")
    assert r.status_code == 403
    assert _error(r) == {
        "message": "TotalRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
    assert r.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    assert client.get("/services/data/").status_code == 200  # not counted


def test_given_limits_when_reading_then_remaining_matches_header(sf: httpx.Client) -> None:
    r = sf.get(f"{V}/limits")
    used, limit = r.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    daily = r.json()["DailyApiRequests"]
    assert daily == {"Max": int(limit), "Remaining": int(limit) - int(used)}


def test_given_faults_when_calling_then_salesforce_shaped_errors(make_sandbox: Any) -> None:
    faults = [
        Fault("rate_limit", vendor="salesforce", path="*/limits", retry_after=7, max_times=1),
        Fault("server_error", vendor="salesforce", path="*/sobjects", status=503, max_times=1),
    ]
    client = _client(make_sandbox(vendors=("salesforce",), size=0, faults=faults))
    throttled = client.get(f"{V}/limits")
    assert throttled.status_code == 403 and throttled.headers["Retry-After"] == "7"
    assert _error(throttled)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    down = client.get(f"{V}/sobjects")
    assert down.status_code == 503 and _error(down)["errorCode"] == "SERVER_UNAVAILABLE"
    assert client.get(f"{V}/sobjects").status_code == 200


# -- Bulk API 2.0 -------------------------------------------------------------------------------


def test_given_bulk_query_job_when_polled_then_completes_and_pages_csv(sf: httpx.Client) -> None:
    total = _query(sf, "SELECT COUNT() FROM Account").json()["totalSize"]
    job = sf.post(
        f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Id, Name FROM Account"}
    ).json()
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    assert sf.get(f"{V}/jobs/query/{job['id']}").json()["state"] == "JobComplete"
    lines, locator, calls = [], None, 0
    while True:
        params: dict[str, Any] = {"maxRecords": 7}
        if locator:
            params["locator"] = locator
        r = sf.get(f"{V}/jobs/query/{job['id']}/results", params=params)
        assert r.headers["Content-Type"].startswith("text/csv")
        body = r.text.splitlines()
        assert body[0] == '"Id","Name"'
        assert int(r.headers["Sforce-NumberOfRecords"]) == len(body) - 1
        lines += body[1:]
        calls += 1
        locator = r.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert len(lines) == total and calls == -(-total // 7)


def test_given_slow_bulk_job_when_reading_results_early_then_not_complete(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=10, options={"salesforce": {"bulk_query_delay": 30}}
    )
    client = _client(sandbox)
    job = client.post(
        f"{V}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Account"}
    ).json()
    states = [client.get(f"{V}/jobs/query/{job['id']}").json()["state"] for _ in range(2)]
    assert states == ["UploadComplete", "InProgress"]
    early = client.get(f"{V}/jobs/query/{job['id']}/results")
    assert early.status_code == 412 and _error(early)["errorCode"] == "JOB_NOT_COMPLETE"
    aborted = client.patch(f"{V}/jobs/query/{job['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert client.delete(f"{V}/jobs/query/{job['id']}").status_code == 204
    assert client.get(f"{V}/jobs/query/{job['id']}").status_code == 404


# -- seeded data --------------------------------------------------------------------------------


def test_given_seeded_org_when_reading_then_json_typed_salesforce_values(sf: httpx.Client) -> None:
    soql = (
        "SELECT Id, Seats__c, AnnualRevenue, IsDeleted, CreatedDate, Renewal_Date__c, OwnerId"
        " FROM Account LIMIT 5"
    )
    for row in _query(sf, soql).json()["records"]:
        assert isinstance(row["Seats__c"], (int, float)) and not isinstance(row["Seats__c"], bool)
        assert row["IsDeleted"] is False
        assert row["CreatedDate"].endswith("+0000") and len(row["CreatedDate"]) == 28
        assert len(row["Renewal_Date__c"]) == 10
        assert row["OwnerId"].startswith("005")
    users = _query(sf, "SELECT Id, Email, IsActive FROM User").json()
    assert users["totalSize"] == 8 and all(u["IsActive"] is True for u in users["records"])


def test_given_seeded_org_when_creating_then_new_id_sorts_after_every_seeded_id(
    sf: httpx.Client,
) -> None:
    seeded = [
        r["Id"] for r in _query(sf, "SELECT Id FROM Account", all_rows=True).json()["records"]
    ]
    new = sf.post(f"{V}/sobjects/Account", json={"Name": "Fresh"}).json()["id"]
    assert new.startswith("001") and new not in seeded
    assert new[:15] > max(seeded)[:15]  # ids come from a counter set past the seeded keys


def test_given_descending_modstamp_order_when_paging_then_matches_sorted_rows(
    make_sandbox: Any,
) -> None:
    client = _client(make_sandbox(vendors=("salesforce",), size=200))
    headers = {"Sforce-Query-Options": "batchSize=200"}
    soql = "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp DESC, Id DESC"
    page = _query(client, soql, headers=headers).json()
    got = list(page["records"])
    while not page["done"]:
        page = client.get(page["nextRecordsUrl"], headers=headers).json()
        got += page["records"]
    keys = [(parse_datetime(r["SystemModstamp"]), r["Id"]) for r in got]
    assert len(keys) == page["totalSize"] > 200
    assert keys == sorted(keys, reverse=True)
    newest = _query(client, "SELECT Id FROM Contact ORDER BY SystemModstamp DESC LIMIT 1").json()
    assert newest["records"][0]["Id"] == got[0]["Id"]


def test_given_more_open_cursors_than_allowed_when_paging_oldest_then_invalid_locator(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",), size=200, options={"salesforce": {"max_open_locators": 1}}
    )
    client = _client(sandbox)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    older = _query(client, "SELECT Id FROM Contact", headers=headers).json()
    newer = _query(client, "SELECT Id, Email FROM Contact", headers=headers).json()
    assert older["done"] is False and newer["done"] is False
    r = client.get(older["nextRecordsUrl"])
    assert r.status_code == 400 and _error(r)["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert client.get(newer["nextRecordsUrl"]).status_code == 200


def test_given_fls_required_when_field_created_then_invisible_until_granted(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(
        vendors=("salesforce",),
        size=10,
        options={"salesforce": {"custom_field_requires_fls": True}},
    )
    client = _client(sandbox)
    body = {
        "FullName": "Account.Sync_Key__c",
        "Metadata": {"label": "Sync Key", "type": "Text", "length": 64},
    }
    assert client.post(f"{V}/tooling/sobjects/CustomField", json=body).status_code == 201
    hidden = _query(client, "SELECT Sync_Key__c FROM Account")
    assert hidden.status_code == 400 and _error(hidden)["errorCode"] == "INVALID_FIELD"
    grant = {
        "ParentId": "0PS5g0000000001AAA",
        "SobjectType": "Account",
        "Field": "Account.Sync_Key__c",
        "PermissionsRead": True,
        "PermissionsEdit": True,
    }
    assert client.post(f"{V}/sobjects/FieldPermissions", json=grant).status_code == 201
    assert _query(client, "SELECT Sync_Key__c FROM Account").status_code == 200
    names = {f["name"] for f in client.get(f"{V}/sobjects/Account/describe").json()["fields"]}
    assert "Sync_Key__c" in names


def test_given_a_realistic_org_then_fields_fls_hides_are_there_but_unseen_until_granted(
    make_sandbox: Any,
) -> None:
    # Given a realistic org, whose Account has fields the integration user has no Read on
    client = _client(make_sandbox(vendors=("salesforce",), size=40, profile="realistic"))
    describe = client.get(f"{V}/sobjects/Account/describe").json()["fields"]
    # then describe does not list them, SOQL names them unknown, a record read lacks them
    assert not {"Credit_Limit__c", "Legal_Hold__c"} & {f["name"] for f in describe}
    hidden = _query(client, "SELECT Legal_Hold__c FROM Account")
    assert hidden.status_code == 400 and _error(hidden)["errorCode"] == "INVALID_FIELD"
    first = _query(client, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    assert "Legal_Hold__c" not in client.get(f"{V}/sobjects/Account/{first}").json()
    # and its name is taken: a new field of that name is a duplicate, not a second field
    body = {"FullName": "Account.Legal_Hold__c", "Metadata": {"label": "L", "type": "Checkbox"}}
    dup = client.post(f"{V}/tooling/sobjects/CustomField", json=body)
    assert dup.status_code == 400 and _error(dup)["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    # when an admin grants Read (not Edit) on one of them
    grant = {"ParentId": "0PS5g0000000001AAA", "SobjectType": "Account",
             "Field": "Account.Legal_Hold__c", "PermissionsRead": True}  # fmt: skip
    assert client.post(f"{V}/sobjects/FieldPermissions", json=grant).status_code == 201
    # then the values the records held all along show, read-only; the other stays hidden
    fields = {f["name"]: f for f in client.get(f"{V}/sobjects/Account/describe").json()["fields"]}
    assert fields["Legal_Hold__c"]["updateable"] is False and "Credit_Limit__c" not in fields
    holds = _query(client, "SELECT Legal_Hold__c FROM Account").json()["records"]
    assert {r["Legal_Hold__c"] for r in holds} == {True, False}
    refused = client.patch(f"{V}/sobjects/Account/{first}", json={"Legal_Hold__c": True})
    assert refused.status_code == 400, refused.text


def test_given_an_object_the_api_user_cannot_see_then_it_is_absent_as_in_a_real_org(
    make_sandbox: Any,
) -> None:
    # Given an org whose API user has no Read on Case, and no NPS_Response__c object
    sandbox = make_sandbox(
        vendors=("salesforce",),
        size=10,
        options={"salesforce": {"hidden_objects": ["Case", "NPS_Response__c"]}},
    )
    client = _client(sandbox)
    # then describe global leaves both out, and keeps the others
    names = {o["name"] for o in client.get(f"{V}/sobjects").json()["sobjects"]}
    assert {"Account", "Contact", "Task"} <= names and not names & {"Case", "NPS_Response__c"}
    # and their describe is 404 NOT_FOUND, a query naming them 400 INVALID_TYPE
    for obj in ("Case", "NPS_Response__c"):
        r = client.get(f"{V}/sobjects/{obj}/describe")
        assert r.status_code == 404 and _error(r)["errorCode"] == "NOT_FOUND"
        q = _query(client, f"SELECT Id FROM {obj}")
        assert q.status_code == 400 and _error(q)["errorCode"] == "INVALID_TYPE"
    assert _query(client, "SELECT Id FROM Account").status_code == 200


# -- a realistic org ----------------------------------------------------------------------------

#: The seeded org's custom fields: a realistic org names its own.
_SEEDED_CUSTOM = {"External_Account_Id__c", "Seats__c", "Renewal_Date__c", "Plan__c"}


def test_given_a_realistic_org_then_describe_lists_a_real_orgs_fields_and_its_own_custom_ones(
    make_sandbox: Any,
) -> None:
    # Given a realistic world's org
    client = _client(make_sandbox(vendors=("salesforce",), size=20, profile="realistic"))
    # then the global describe has no NPS object
    names = {o["name"] for o in client.get(f"{V}/sobjects").json()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Case"} <= names
    assert "NPS_Response__c" not in names
    # and Account lists a real org's long standard field list, compound addresses included
    account = {f["name"]: f for f in client.get(f"{V}/sobjects/Account/describe").json()["fields"]}
    assert len(account) >= 50
    assert account["BillingAddress"]["type"] == "address"
    assert account["ShippingAddress"]["type"] == "address"
    assert not account["BillingAddress"]["createable"]
    assert account["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert account["ParentId"]["type"] == "reference"
    assert {"AccountNumber", "Rating", "Sic", "DunsNumber", "NaicsCode", "YearStarted"} <= set(
        account
    )
    # and the org's own custom fields, none of the seeded org's
    custom = {n: f for n, f in account.items() if f["custom"]}
    assert set(custom) == {
        "Customer_Number__c", "ARR__c", "Licenses_Purchased__c", "Subscription_Tier__c",
        "Contract_End_Date__c", "Customer_Since__c", "Churned__c",
    }  # fmt: skip
    assert custom["Customer_Number__c"]["externalId"] and custom["Customer_Number__c"]["unique"]
    assert custom["ARR__c"]["type"] == "currency" and custom["Churned__c"]["type"] == "boolean"
    types = [v["value"] for v in account["Type"]["picklistValues"]]
    assert "Former Customer" not in types
    contact = {f["name"]: f for f in client.get(f"{V}/sobjects/Contact/describe").json()["fields"]}
    assert len(contact) >= 50 and contact["MailingAddress"]["type"] == "address"
    assert contact["OtherAddress"]["type"] == "address" and contact["Birthdate"]["type"] == "date"
    case = {f["name"]: f for f in client.get(f"{V}/sobjects/Case/describe").json()["fields"]}
    assert "Satisfaction_Score__c" in case and "CSAT__c" not in case
    assert {"SuppliedEmail", "ContactEmail", "IsEscalated"} <= set(case)
    opp = {f["name"]: f for f in client.get(f"{V}/sobjects/Opportunity/describe").json()["fields"]}
    assert opp["Probability"]["type"] == "percent" and "ForecastCategoryName" in opp


def test_given_a_realistic_org_when_querying_then_custom_values_and_the_compound_address(
    make_sandbox: Any,
) -> None:
    # Given a realistic world's org
    client = _client(make_sandbox(vendors=("salesforce",), size=30, profile="realistic"))
    # when a REST query selects its custom fields and the compound BillingAddress
    soql = (
        "SELECT Id, Customer_Number__c, ARR__c, AnnualRevenue, NumberOfEmployees, BillingCity,"
        " BillingCountry, BillingAddress, Churned__c, Type FROM Account"
    )
    r = _query(client, soql)
    assert r.status_code == 200, r.text
    rows = r.json()["records"]
    assert rows
    for row in rows:
        # then each account carries its external id and ARR in the org's own fields
        assert row["Customer_Number__c"].startswith("ACC-")
        assert isinstance(row["ARR__c"], int | float) and row["ARR__c"] > 0
        # and AnnualRevenue is the company's own revenue (firmographic), not the ARR
        if row["NumberOfEmployees"]:
            assert row["AnnualRevenue"] == row["NumberOfEmployees"] * 150_000
        assert row["Type"] != "Former Customer" and isinstance(row["Churned__c"], bool)
        # and the compound address is an object built from its components
        address = row["BillingAddress"]
        if row["BillingCity"] is None and row["BillingCountry"] is None:
            assert address is None
        else:
            assert address["city"] == row["BillingCity"]
            assert address["country"] == row["BillingCountry"]
            assert address["street"] is None and address["latitude"] is None
    assert any(row["BillingAddress"] for row in rows)
    # and an upsert by the org's external id finds the account
    first = rows[0]
    upsert = client.patch(
        f"{V}/sobjects/Account/Customer_Number__c/{first['Customer_Number__c']}",
        json={"Rating": "Hot"},
    )
    assert upsert.status_code in (200, 204), upsert.text
    again = _query(client, f"SELECT Rating FROM Account WHERE Id = '{first['Id']}'").json()
    assert again["records"][0]["Rating"] == "Hot"
    # and opportunities carry the probability and forecast category of their stage
    stages = {
        s["MasterLabel"]: s
        for s in _query(
            client, "SELECT MasterLabel, DefaultProbability, ForecastCategory FROM OpportunityStage"
        ).json()["records"]
    }
    opps = _query(client, "SELECT StageName, Probability, ForecastCategory FROM Opportunity")
    assert opps.json()["records"]
    for opp in opps.json()["records"]:
        stage = stages[opp["StageName"]]
        assert opp["Probability"] == stage["DefaultProbability"]
        assert opp["ForecastCategory"] == stage["ForecastCategory"]


@pytest.mark.parametrize(
    ("profile", "won", "lost", "open_stage", "resolved"),
    [
        ("seeded", "Closed Won", "Closed Lost", "Prospecting", "Closed"),
        ("realistic", "Signed", "No Decision", "Verbal Commit", "Resolved"),
    ],
)
def test_given_an_orgs_own_stages_then_closed_and_won_follow_its_stage_records(
    make_sandbox: Any, profile: str, won: str, lost: str, open_stage: str, resolved: str
) -> None:
    # Given an org (the realistic one has its own sales process: no stage named "Closed ...")
    client = _client(make_sandbox(vendors=("salesforce",), size=5, profile=profile))
    # when its stages and case statuses are queried, then they carry closed and won
    stages = {
        s["ApiName"]: (s["IsClosed"], s["IsWon"])
        for s in _query(client, "SELECT ApiName, IsClosed, IsWon FROM OpportunityStage").json()[
            "records"
        ]
    }
    assert stages[won] == (True, True) and stages[lost] == (True, False)
    assert stages[open_stage] == (False, False)
    statuses = _query(client, "SELECT MasterLabel, IsClosed FROM CaseStatus").json()["records"]
    assert {s["MasterLabel"] for s in statuses if s["IsClosed"]} >= {resolved}
    # and the seeded opportunities agree with their stage's record
    for opp in _query(client, "SELECT StageName, IsClosed, IsWon FROM Opportunity").json()[
        "records"
    ]:
        assert (opp["IsClosed"], opp["IsWon"]) == stages[opp["StageName"]]
    # when an opportunity moves through the org's stages, then Salesforce derives closed/won
    account = _query(client, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    made = client.post(
        f"{V}/sobjects/Opportunity",
        json={"Name": "Renewal", "AccountId": account, "StageName": open_stage,
              "CloseDate": "2026-12-31"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    oid = made.json()["id"]
    for stage in (lost, won, open_stage):
        assert client.patch(f"{V}/sobjects/Opportunity/{oid}", json={"StageName": stage}).is_success
        got = client.get(f"{V}/sobjects/Opportunity/{oid}").json()
        assert (got["IsClosed"], got["IsWon"]) == stages[stage], stage
    # and a case in a status the org counts as closed is closed
    case = client.post(f"{V}/sobjects/Case", json={"AccountId": account, "Status": resolved})
    assert case.status_code == 201, case.text
    assert client.get(f"{V}/sobjects/Case/{case.json()['id']}").json()["IsClosed"] is True
    # and the stage records are setup data: read-only through the API
    refused = client.post(f"{V}/sobjects/OpportunityStage", json={"MasterLabel": "Won"})
    assert refused.status_code == 400
    assert _error(refused)["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


def test_given_a_realistic_org_then_compound_fields_are_rejected_where_salesforce_rejects_them(
    make_sandbox: Any,
) -> None:
    # Given a realistic world's org
    client = _client(make_sandbox(vendors=("salesforce",), size=10, profile="realistic"))
    # when a Bulk 2.0 query job selects a compound field, then it is refused
    job = client.post(
        f"{V}/jobs/query",
        json={"operation": "query", "query": "SELECT Id, BillingAddress FROM Account"},
    )
    assert job.status_code == 400 and "compound" in _error(job)["message"]
    # and its components are selectable in Bulk
    ok = client.post(
        f"{V}/jobs/query",
        json={"operation": "query", "query": "SELECT Id, BillingCity FROM Account"},
    )
    assert ok.status_code == 200, ok.text
    # and in SOQL a compound field is neither filtered nor sorted on, nor written
    for soql in (
        "SELECT Id FROM Account WHERE BillingAddress = null",
        "SELECT Id FROM Account ORDER BY ShippingAddress",
    ):
        r = _query(client, soql)
        assert r.status_code == 400 and _error(r)["errorCode"] == "INVALID_FIELD", r.text
    rid = _query(client, "SELECT Id FROM Account LIMIT 1").json()["records"][0]["Id"]
    write = client.patch(f"{V}/sobjects/Account/{rid}", json={"BillingAddress": {"city": "Oslo"}})
    assert write.status_code == 400
    assert _error(write)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
