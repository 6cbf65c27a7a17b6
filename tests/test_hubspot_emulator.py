"""Contract tests of the HubSpot emulator over real loopback HTTP (hubspot/API.md §1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_connectors.hubspot.emulator.model import ID_BASE
from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED
from crm_connectors.sandbox.world import WorldSpec

TOKEN = "pat-sandbox-hubspot"
CLIENT = {"client_id": "sandbox-hubspot-client", "client_secret": "sandbox-hubspot-secret"}
REFRESH = "sandbox-hubspot-refresh"


def client(sandbox: Sandbox, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=sandbox.urls["hubspot"], headers=headers, timeout=30)


@pytest.fixture
def hs(make_sandbox: Any) -> Sandbox:
    return make_sandbox(vendors=("hubspot",), size=30, tie_block=25)


def live_ids(sandbox: Sandbox, obj: str, state: int = LIVE) -> list[str]:
    rows = sandbox.store.conn().execute(
        "SELECT id FROM records WHERE vendor = 'hubspot' AND object = ? AND state = ? ORDER BY id",
        (obj, state),
    )
    return [r[0] for r in rows]


def assert_envelope(resp: httpx.Response, status: int, category: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == "error"
    assert body["category"] == category
    assert body["correlationId"] and body["message"]
    assert "Traceback" not in resp.text
    return body  # type: ignore[no-any-return]


# -- list and get ---------------------------------------------------------------------------------


def test_given_cursor_when_listing_then_pages_cover_all_records_without_overlap(
    hs: Sandbox,
) -> None:
    seen: list[str] = []
    after = None
    last_body: dict[str, Any] = {}
    with client(hs) as c:
        while True:
            params: dict[str, Any] = {"limit": 7}
            if after:
                params["after"] = after
            last_body = c.get("/crm/v3/objects/contacts", params=params).json()
            seen.extend(r["id"] for r in last_body["results"])
            if "paging" not in last_body:
                break
            after = last_body["paging"]["next"]["after"]
    assert seen == live_ids(hs, "contacts")
    assert len(seen) == len(set(seen))
    assert "paging" not in last_body


def test_given_limit_over_100_when_listing_then_400_validation_error(hs: Sandbox) -> None:
    with client(hs) as c:
        assert c.get("/crm/v3/objects/companies", params={"limit": 100}).status_code == 200
        assert_envelope(
            c.get("/crm/v3/objects/companies", params={"limit": 101}), 400, "VALIDATION_ERROR"
        )


def test_given_clamp_policy_when_listing_over_max_then_100_returned(make_sandbox: Any) -> None:
    sb = make_sandbox(
        vendors=("hubspot",), size=60, options={"hubspot": {"list_limit_policy": "clamp"}}
    )
    with client(sb) as c:
        resp = c.get("/crm/v3/objects/deals", params={"limit": 500})
    assert resp.status_code == 200
    assert len(resp.json()["results"]) == 100


def test_given_no_limit_when_listing_then_default_page_of_10(hs: Sandbox) -> None:
    with client(hs) as c:
        body = c.get("/crm/v3/objects/deals").json()
    assert len(body["results"]) == 10
    assert body["paging"]["next"]["after"]


def test_given_properties_param_when_getting_then_defaults_always_returned(hs: Sandbox) -> None:
    cid = live_ids(hs, "contacts")[0]
    comp = live_ids(hs, "companies")[0]
    with client(hs) as c:
        contact = c.get(f"/crm/v3/objects/contacts/{cid}", params={"properties": "jobtitle"})
        company = c.get(f"/crm/v3/objects/0-2/{comp}", params={"properties": "seats,nope"})
    props = contact.json()["properties"]
    assert set(props) == {"jobtitle", "hs_object_id", "createdate", "lastmodifieddate"}
    cprops = company.json()["properties"]
    assert set(cprops) == {"seats", "hs_object_id", "createdate", "hs_lastmodifieddate"}
    assert cprops["hs_object_id"] == comp
    assert isinstance(cprops["seats"], str)


def test_given_id_property_when_getting_then_record_found_by_unique_value(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.get(
            "/crm/v3/objects/companies/ACC-0000001",
            params={"idProperty": "external_account_id", "properties": "external_account_id"},
        )
    if str(ID_BASE["companies"] + 1) not in live_ids(hs, "companies"):
        pytest.skip("account 1 is not a live HubSpot company in this world")
    assert resp.status_code == 200
    assert resp.json()["properties"]["external_account_id"] == "ACC-0000001"


def test_given_unknown_id_when_getting_then_404_object_not_found(hs: Sandbox) -> None:
    with client(hs) as c:
        assert_envelope(c.get("/crm/v3/objects/contacts/123"), 404, "OBJECT_NOT_FOUND")


# -- writes, archive, merge ---------------------------------------------------------------------


def test_given_deleted_record_when_listing_archived_then_only_archived_with_archived_at(
    hs: Sandbox,
) -> None:
    victim = live_ids(hs, "companies")[0]
    with client(hs) as c:
        assert c.delete(f"/crm/v3/objects/companies/{victim}").status_code == 204
        assert c.get(f"/crm/v3/objects/companies/{victim}").status_code == 404
        archived = c.get("/crm/v3/objects/companies", params={"archived": "true", "limit": 100})
        live = c.get("/crm/v3/objects/companies", params={"limit": 100}).json()["results"]
        found = c.post(
            "/crm/v3/objects/companies/search",
            json={"filterGroups": [{"filters": [
                {"propertyName": "hs_object_id", "operator": "EQ", "value": victim}]}]},
        ).json()  # fmt: skip
    results = archived.json()["results"]
    assert victim in [r["id"] for r in results]
    assert all(r["archived"] is True and r["archivedAt"] for r in results)
    assert victim not in [r["id"] for r in live]
    assert found["total"] == 0


def test_given_create_when_posting_then_201_and_values_are_strings(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.post(
            "/crm/v3/objects/companies",
            json={"properties": {"name": "New Co", "seats": 12, "renewal_date": "2027-01-01"}},
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        got = c.get(
            f"/crm/v3/objects/companies/{body['id']}", params={"properties": "seats,renewal_date"}
        ).json()
    assert body["properties"]["seats"] == "12"
    assert got["properties"]["renewal_date"] == "2027-01-01"


def test_given_unknown_property_when_creating_then_400_property_doesnt_exist(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.post("/crm/v3/objects/contacts", json={"properties": {"nope": "x"}})
    body = assert_envelope(resp, 400, "VALIDATION_ERROR")
    assert "PROPERTY_DOESNT_EXIST" in body["message"]


def test_given_unknown_owner_when_updating_then_400_invalid_owner_id(hs: Sandbox) -> None:
    target = live_ids(hs, "deals")[0]
    with client(hs) as c:
        owner = c.get("/crm/v3/owners", params={"limit": 1}).json()["results"][0]["id"]
        ok = c.patch(f"/crm/v3/objects/deals/{target}", json={"properties": {
            "hubspot_owner_id": owner}})  # fmt: skip
        bad = c.patch(f"/crm/v3/objects/deals/{target}", json={"properties": {
            "hubspot_owner_id": "123"}})  # fmt: skip
    assert ok.status_code == 200
    assert "INVALID_OWNER_ID" in assert_envelope(bad, 400, "VALIDATION_ERROR")["message"]


def test_given_merged_contact_when_getting_old_id_then_surviving_record(hs: Sandbox) -> None:
    a, b = live_ids(hs, "contacts")[:2]
    with client(hs) as c:
        merged = c.post(
            "/crm/v3/objects/contacts/merge", json={"primaryObjectId": a, "objectIdToMerge": b}
        )
        assert merged.status_code == 200, merged.text
        resp = c.get(f"/crm/v3/objects/contacts/{b}")
    assert resp.status_code == 200
    assert resp.json()["id"] == a


def test_given_task_with_company_association_when_created_then_v4_lists_it(hs: Sandbox) -> None:
    company = live_ids(hs, "companies")[0]
    with client(hs) as c:
        resp = c.post(
            "/crm/v3/objects/tasks",
            json={
                "properties": {"hs_timestamp": "1767225600000", "hs_task_subject": "Call them"},
                "associations": [{"to": {"id": company}, "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}]}],
            },
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        task_id = resp.json()["id"]
        v4 = c.get(f"/crm/v4/objects/companies/{company}/associations/tasks").json()
        v3 = c.get(f"/crm/v3/objects/0-27/{task_id}/associations/companies").json()
        missing_ts = c.post("/crm/v3/objects/tasks", json={"properties": {"hs_task_subject": "x"}})
    assert int(task_id) in [r["toObjectId"] for r in v4["results"]]
    assert v3["results"] == [{"id": company, "type": "task_to_company"}]
    assert missing_ts.status_code == 400


def test_given_read_only_feedback_when_writing_then_405(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.post("/crm/v3/objects/feedback_submissions", json={"properties": {}})
        listed = c.get("/crm/v3/objects/0-19", params={"properties": "hs_response_value"})
    assert resp.status_code == 405
    assert listed.status_code == 200
    assert all(r["properties"]["hs_response_value"] for r in listed.json()["results"])


# -- batch ----------------------------------------------------------------------------------------


def test_given_some_unknown_ids_when_batch_reading_then_207_with_errors(hs: Sandbox) -> None:
    ids = live_ids(hs, "contacts")[:3]
    with client(hs) as c:
        resp = c.post(
            "/crm/v3/objects/contacts/batch/read",
            json={"inputs": [{"id": i} for i in [*ids, "1"]], "properties": ["email"]},
        )
    assert resp.status_code == 207
    body = resp.json()
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"]["ids"] == ["1"]
    assert sorted(r["id"] for r in body["results"]) == ids
    assert body["status"] == "COMPLETE" and body["startedAt"] and body["completedAt"]


def test_given_101_inputs_when_batch_updating_then_400_validation_error(hs: Sandbox) -> None:
    inputs = [{"id": str(i), "properties": {"name": "x"}} for i in range(101)]
    with client(hs) as c:
        resp = c.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs})
    assert_envelope(resp, 400, "VALIDATION_ERROR")


def test_given_partial_unknown_when_batch_updating_then_207_and_trace_ids_echoed(
    hs: Sandbox,
) -> None:
    good = live_ids(hs, "companies")[0]
    with client(hs) as c:
        resp = c.post(
            "/crm/v3/objects/companies/batch/update",
            json={"inputs": [
                {"id": good, "properties": {"seats": "77"}, "objectWriteTraceId": "t1"},
                {"id": "1", "properties": {"seats": "1"}, "objectWriteTraceId": "t2"},
            ]},
        )  # fmt: skip
    assert resp.status_code == 207
    body = resp.json()
    assert body["results"][0]["objectWriteTraceId"] == "t1"
    assert body["results"][0]["properties"]["seats"] == "77"
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["t2"]


def test_given_non_unique_id_property_when_upserting_then_400(hs: Sandbox) -> None:
    with client(hs) as c:
        bad = c.post(
            "/crm/v3/objects/companies/batch/upsert",
            json={"inputs": [{"id": "x", "idProperty": "name", "properties": {}}]},
        )
        good = c.post(
            "/crm/v3/objects/contacts/batch/upsert",
            json={"inputs": [{"id": "new.person@example.com", "idProperty": "email",
                              "properties": {"firstname": "New"}}]},
        )  # fmt: skip
    assert_envelope(bad, 400, "VALIDATION_ERROR")
    assert good.status_code == 200
    assert good.json()["results"][0]["new"] is True


def test_given_duplicate_email_when_creating_contact_then_409_conflict(hs: Sandbox) -> None:
    with client(hs) as c:
        first = c.post("/crm/v3/objects/contacts", json={"properties": {"email": "d@x.example"}})
        again = c.post("/crm/v3/objects/contacts", json={"properties": {"email": "D@x.example"}})
    assert first.status_code == 201
    body = assert_envelope(again, 409, "CONFLICT")
    assert first.json()["id"] in body["message"]


# -- search ---------------------------------------------------------------------------------------


def search(c: httpx.Client, obj: str, body: dict[str, Any]) -> httpx.Response:
    return c.post(f"/crm/v3/objects/{obj}/search", json=body)


def test_given_tie_block_when_paging_search_then_stable_order_by_id(hs: Sandbox) -> None:
    tie_ms = WorldSpec(size=30, seed=7, tie_block=25).tie_ms
    flt = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(tie_ms)}
    seen: list[str] = []
    after = "0"
    with client(hs) as c:
        while True:
            body = search(c, "contacts", {
                "filterGroups": [{"filters": [flt]}], "limit": 4, "after": after,
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            }).json()  # fmt: skip
            seen.extend(r["id"] for r in body["results"])
            if "paging" not in body:
                break
            after = body["paging"]["next"]["after"]
    assert body["total"] == 25
    assert seen == sorted(seen) and len(set(seen)) == 25


def test_given_after_beyond_10000_when_searching_then_400(hs: Sandbox) -> None:
    with client(hs) as c:
        ok = search(c, "contacts", {"limit": 200, "after": "9800"})
        beyond = search(c, "contacts", {"limit": 200, "after": "9900"})
        too_big = search(c, "contacts", {"limit": 201})
    assert ok.status_code == 200
    assert_envelope(beyond, 400, "VALIDATION_ERROR")
    assert_envelope(too_big, 400, "VALIDATION_ERROR")


def test_given_gt_on_modified_date_when_searching_then_only_newer_sorted(hs: Sandbox) -> None:
    rows = (
        hs.store.conn()
        .execute(
            "SELECT id, updated_ms FROM records WHERE vendor='hubspot' AND object='companies'"
            " AND state=0 ORDER BY updated_ms"
        )
        .fetchall()
    )
    pivot = rows[len(rows) // 2][1]
    with client(hs) as c:
        body = search(c, "companies", {
            "filterGroups": [{"filters": [
                {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(pivot)}]}],
            "sorts": ["hs_lastmodifieddate"], "limit": 100,
        }).json()  # fmt: skip
    expected = [r[0] for r in rows if r[1] > pivot]
    assert [r["id"] for r in body["results"]] == expected
    assert body["total"] == len(expected)


def test_given_or_groups_and_operators_when_searching_then_sql_matches_rules(hs: Sandbox) -> None:
    with client(hs) as c:
        allc = search(c, "companies", {"limit": 200, "properties": ["plan", "seats", "domain"]})
        everything = {r["id"]: r["properties"] for r in allc.json()["results"]}

        def ids(filter_groups: list[dict[str, Any]]) -> set[str]:
            resp = search(c, "companies", {"filterGroups": filter_groups, "limit": 200})
            assert resp.status_code == 200, resp.text
            return {r["id"] for r in resp.json()["results"]}

        plans = ids([{"filters": [{"propertyName": "plan", "operator": "IN",
                                   "values": ["growth", "enterprise"]}]}])  # fmt: skip
        between = ids([{"filters": [{"propertyName": "seats", "operator": "BETWEEN",
                                     "value": "10", "highValue": "50"}]}])  # fmt: skip
        either = ids([
            {"filters": [{"propertyName": "plan", "operator": "EQ", "value": "starter"}]},
            {"filters": [{"propertyName": "seats", "operator": "GTE", "value": "100"}]},
        ])  # fmt: skip
        no_domain = ids([{"filters": [{"propertyName": "domain", "operator": "NOT_HAS_PROPERTY"}]}])
        token = ids([{"filters": [{"propertyName": "domain", "operator": "CONTAINS_TOKEN",
                                   "value": "*example.com"}]}])  # fmt: skip
    assert plans == {i for i, p in everything.items() if p["plan"] in ("growth", "enterprise")}
    assert between == {i for i, p in everything.items() if 10 <= float(p["seats"]) <= 50}
    assert either == {
        i for i, p in everything.items() if p["plan"] == "starter" or float(p["seats"]) >= 100
    }
    assert no_domain == {i for i, p in everything.items() if not p["domain"]}
    assert token == {i for i, p in everything.items() if p["domain"]}


def test_given_too_many_filter_groups_when_searching_then_400(make_sandbox: Any) -> None:
    sb = make_sandbox(vendors=("hubspot",), size=0, options={"hubspot": {"search_max_groups": 2}})
    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    with client(sb) as c:
        assert search(c, "contacts", {"filterGroups": [group, group]}).status_code == 200
        assert_envelope(
            search(c, "contacts", {"filterGroups": [group] * 3}), 400, "VALIDATION_ERROR"
        )


def test_given_index_lag_when_searching_new_record_then_hidden_until_indexed(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(
        vendors=("hubspot",), size=0, options={"hubspot": {"search_index_lag_ms": 60_000}}
    )
    with client(sb) as c:
        assert c.post("/crm/v3/objects/contacts", json={"properties": {}}).status_code == 201
        assert search(c, "contacts", {}).json()["total"] == 0
        assert len(c.get("/crm/v3/objects/contacts").json()["results"]) == 1


def test_given_created_property_when_writing_and_searching_then_it_works(hs: Sandbox) -> None:
    prop = {"name": "health_score", "label": "Health", "type": "number",
            "fieldType": "number", "groupName": "companyinformation"}  # fmt: skip
    target = live_ids(hs, "companies")[0]
    with client(hs) as c:
        assert c.post("/crm/v3/properties/companies", json=prop).status_code == 201
        dup = c.post("/crm/v3/properties/companies", json=prop)
        c.patch(f"/crm/v3/objects/companies/{target}", json={"properties": {"health_score": 42}})
        flt = {"propertyName": "health_score", "operator": "GT", "value": "40"}
        body = search(c, "companies", {"filterGroups": [{"filters": [flt]}]}).json()
    assert_envelope(dup, 409, "OBJECT_ALREADY_EXISTS")
    assert [r["id"] for r in body["results"]] == [target]


# -- rate limits, auth, errors --------------------------------------------------------------------


def test_given_small_window_when_exceeded_then_429_with_policy_and_headers(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(
        vendors=("hubspot",), size=0, rate_limits="real", options={"hubspot": {"burst_limit": 3}}
    )
    with client(sb) as c:
        first = c.get("/crm/v3/objects/contacts")
        for _ in range(2):
            c.get("/crm/v3/objects/contacts")
        blocked = c.get("/crm/v3/objects/contacts")
    assert first.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "1000000"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in first.headers
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"] and body["requestId"]


def test_given_search_budget_when_exceeded_then_429_secondly_and_list_unaffected(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(
        vendors=("hubspot",), size=0, rate_limits="real",
        options={"hubspot": {"search_per_second": 2}},
    )  # fmt: skip
    with client(sb) as c:
        ok = [search(c, "contacts", {}) for _ in range(2)]
        blocked = search(c, "contacts", {})
        listed = c.get("/crm/v3/objects/contacts")
    assert all(r.status_code == 200 for r in ok)
    assert "X-HubSpot-RateLimit-Max" not in ok[0].headers
    assert blocked.status_code == 429
    assert blocked.json()["policyName"] == "SECONDLY"
    assert listed.status_code == 200


def test_given_refresh_token_when_exchanging_then_bearer_access_token_works(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(vendors=("hubspot",), size=0, rate_limits="real")
    with client(sb, token=None) as c:
        resp = c.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": REFRESH, **CLIENT},
        )
        bad = c.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": "nope", **CLIENT},
        )
        bad_client = c.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": REFRESH,
                  "client_id": "x", "client_secret": "y"},
        )  # fmt: skip
    token = resp.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 1800
    assert bad.status_code == 400 and bad.json()["status"] == "BAD_REFRESH_TOKEN"
    assert bad_client.status_code == 400 and bad_client.json()["status"] == "BAD_CLIENT_ID"
    with client(sb, token=token["access_token"]) as c:
        listed = c.get("/crm/v3/objects/contacts")
        info = c.get(f"/oauth/v1/access-tokens/{token['access_token']}")
    assert listed.status_code == 200
    assert listed.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert "X-HubSpot-RateLimit-Daily" not in listed.headers
    assert info.json()["hub_id"]


def test_given_expired_access_token_when_calling_then_401_expired_authentication(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(vendors=("hubspot",), size=0, options={"hubspot": {"access_token_ttl": 0}})
    with client(sb, token=None) as c:
        token = c.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": REFRESH, **CLIENT},
        ).json()["access_token"]
    with client(sb, token=token) as c:
        expired = c.get("/crm/v3/objects/contacts")
    with client(sb, token="wrong") as c:
        invalid = c.get("/crm/v3/objects/contacts")
    with client(sb, token=None) as c:
        missing = c.get("/crm/v3/objects/contacts")
    assert_envelope(expired, 401, "EXPIRED_AUTHENTICATION")
    assert_envelope(invalid, 401, "INVALID_AUTHENTICATION")
    assert_envelope(missing, 401, "INVALID_AUTHENTICATION")


def test_given_wrong_method_when_calling_then_405_with_allow(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.delete("/crm/v3/objects/contacts")
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert resp.json()["status"] == "error"


def test_given_malformed_json_when_posting_then_400_hubspot_envelope(hs: Sandbox) -> None:
    with client(hs) as c:
        resp = c.post(
            "/crm/v3/objects/contacts/search",
            content=b'{"limit": ',
            headers={"Content-Type": "application/json"},
        )
    body = assert_envelope(resp, 400, "VALIDATION_ERROR")
    assert body["message"].startswith("Invalid input JSON")


def test_given_faults_when_calling_then_hubspot_shaped_429_and_5xx(make_sandbox: Any) -> None:
    sb = make_sandbox(
        vendors=("hubspot",), size=0,
        faults=[
            Fault(kind="rate_limit", vendor="hubspot", path="/crm/v3/objects/deals",
                  retry_after=2),
            Fault(kind="server_error", vendor="hubspot", path="/crm/v3/objects/tickets",
                  status=502),
        ],
    )  # fmt: skip
    with client(sb) as c:
        throttled = c.get("/crm/v3/objects/deals")
        broken = c.get("/crm/v3/objects/tickets")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["errorType"] == "RATE_LIMIT"
    assert broken.status_code == 502
    assert broken.json()["status"] == "error"


def test_given_seeded_world_when_counting_then_archived_and_merged_kept_out_of_lists(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(vendors=("hubspot",), size=300)
    with client(sb) as c:
        total = search(c, "contacts", {"limit": 1}).json()["total"]
        archived = c.get("/crm/v3/objects/contacts", params={"archived": "true", "limit": 100})
    assert total == len(live_ids(sb, "contacts"))
    assert archived.json()["results"], "the world should hold archived contacts"
    assert {r["id"] for r in archived.json()["results"]} == set(live_ids(sb, "contacts", ARCHIVED))


def test_given_seeded_merged_records_when_getting_old_id_then_surviving_record(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(vendors=("hubspot",), size=300)
    rows = (
        sb.store.conn()
        .execute(
            "SELECT id, json_extract(data, '$.mergedInto') FROM records"
            " WHERE vendor = 'hubspot' AND object = 'contacts' AND state = ?",
            (MERGED,),
        )
        .fetchall()
    )
    assert rows, "the world should hold merged contacts"
    with client(sb) as c:
        for old, survivor in rows:
            resp = c.get(f"/crm/v3/objects/contacts/{old}")
            assert resp.status_code == 200
            assert resp.json()["id"] == survivor


def test_given_tie_block_over_cap_when_keyset_paging_by_object_id_then_all_ties_read(
    make_sandbox: Any,
) -> None:
    # 10,300: some tie contacts are archived or merged, and the live block must exceed 10,000.
    spec = WorldSpec(size=2_000, seed=7, tie_block=10_300)
    sb = make_sandbox(vendors=("hubspot",), size=2_000, seed_value=7, tie_block=10_300)
    expected = (
        sb.store.conn()
        .execute(
            "SELECT count(*) FROM records WHERE vendor = 'hubspot' AND object = 'contacts'"
            " AND state = 0 AND updated_ms = ?",
            (spec.tie_ms,),
        )
        .fetchone()[0]
    )
    tie = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(spec.tie_ms)}
    seen: list[str] = []
    last = "0"
    with client(sb) as c:
        capped = search(c, "contacts", {"filterGroups": [{"filters": [tie]}],
                                        "limit": 200, "after": "10000"})  # fmt: skip
        while True:
            page = search(c, "contacts", {
                "filterGroups": [{"filters": [
                    tie, {"propertyName": "hs_object_id", "operator": "GT", "value": last}]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 200,
            }).json()  # fmt: skip
            if not page["results"]:
                break
            seen.extend(r["id"] for r in page["results"])
            last = seen[-1]
    assert expected > 10_000
    assert_envelope(capped, 400, "VALIDATION_ERROR")
    assert len(seen) == len(set(seen)) == expected


def test_given_a_portal_when_reading_pipelines_then_defaults_and_custom_ones_with_stage_metadata(
    hs: Sandbox,
) -> None:
    c = client(hs)
    # Given a new portal: the default sales and support pipelines, metadata values as strings
    deals = c.get("/crm/v3/pipelines/deals").json()["results"]
    assert [p["id"] for p in deals] == ["default"]
    won = next(s for s in deals[0]["stages"] if s["id"] == "closedwon")
    assert won["metadata"] == {"isClosed": "true", "probability": "1.0"}
    tickets = c.get("/crm/v3/pipelines/tickets").json()["results"]
    assert {s["id"]: s["metadata"]["ticketState"] for s in tickets[0]["stages"]}["4"] == "CLOSED"
    # when an admin adds a renewals pipeline (stage ids are the portal's own numbers)
    stages = [
        {"label": "Up for renewal", "displayOrder": 0, "metadata": {"probability": "0.5"}},
        {"label": "Renewed", "displayOrder": 1, "metadata": {"probability": "1.0"}},
        {"label": "Churned", "displayOrder": 2,
         "metadata": {"probability": "0.0", "isClosed": "true"}},
    ]  # fmt: skip
    made = c.post(
        "/crm/v3/pipelines/deals", json={"label": "Renewals", "displayOrder": 1, "stages": stages}
    )
    assert made.status_code == 201, made.text
    pipe = made.json()
    renewed, churned = pipe["stages"][1]["id"], pipe["stages"][2]["id"]
    assert renewed.isdigit() and c.get(f"/crm/v3/pipelines/deals/{pipe['id']}").json() == pipe
    # then deals take its stages, and HubSpot's calculated flags follow the stage metadata
    for stage, closed, won_ in ((renewed, "true", "true"), (churned, "true", "false"),
                                (pipe["stages"][0]["id"], "false", "false")):  # fmt: skip
        deal = c.post("/crm/v3/objects/deals", json={"properties": {
            "dealname": "Renewal", "pipeline": pipe["id"], "dealstage": stage}})  # fmt: skip
        assert deal.status_code == 201, deal.text
        got = c.get(f"/crm/v3/objects/deals/{deal.json()['id']}",
                    params={"properties": "hs_is_closed,hs_is_closed_won"}).json()  # fmt: skip
        assert (got["properties"]["hs_is_closed"], got["properties"]["hs_is_closed_won"]) == (
            closed, won_)  # fmt: skip
    # and a stage no pipeline has is rejected, the flags are read-only
    bad = c.post("/crm/v3/objects/deals", json={"properties": {"dealstage": "nosuchstage"}})
    assert bad.status_code == 400 and "INVALID_OPTION" in bad.text
    ro = c.post("/crm/v3/objects/deals", json={"properties": {"hs_is_closed_won": "true"}})
    assert ro.status_code == 400 and "READ_ONLY_VALUE" in ro.text
    assert c.get("/crm/v3/pipelines/contacts").status_code == 400
