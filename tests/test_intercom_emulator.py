"""Contract tests of the Intercom emulator over real loopback HTTP (intercom/API.md §3)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED

MakeSandbox = Callable[..., Sandbox]
TOKEN = "sandbox-intercom-token"
DAY = 86_400


def _client(sandbox: Sandbox, version: str | None = "2.14") -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    if version:
        headers["Intercom-Version"] = version
    return httpx.Client(base_url=sandbox.urls["intercom"], headers=headers, timeout=30)


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox(vendors=("intercom",), size=40)


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with _client(sandbox) as client:
        yield client


def _error_code(resp: httpx.Response) -> str:
    body = resp.json()
    assert body["type"] == "error.list"
    assert body["request_id"]
    return str(body["errors"][0]["code"])


def _all_contacts(api: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"per_page": 150}
    while True:
        body = api.get("/contacts", params=params).json()
        out += body["data"]
        nxt = (body["pages"] or {}).get("next")
        if not nxt:
            return out
        params["starting_after"] = nxt["starting_after"]


# -- search: calendar-day matching -----------------------------------------------------------


def test_given_contact_updated_later_on_day_t_when_searching_updated_after_earlier_time_that_day_then_it_is_missed(  # noqa: E501
    api: httpx.Client,
) -> None:
    contact = next(c for c in _all_contacts(api) if c["updated_at"] % DAY > 60)
    updated = contact["updated_at"]
    earlier_same_day = updated - 1  # a naive timestamp comparison would match this
    query = {"field": "updated_at", "operator": ">", "value": earlier_same_day}

    same_day = api.post("/contacts/search", json={"query": query, "pagination": {"per_page": 150}})
    day_before = api.post(
        "/contacts/search",
        json={
            "query": {"field": "updated_at", "operator": ">", "value": updated - DAY},
            "pagination": {"per_page": 150},
        },
    )
    whole_day = api.post(
        "/contacts/search",
        json={
            "query": {"field": "updated_at", "operator": "=", "value": updated},
            "pagination": {"per_page": 150},
        },
    )

    assert same_day.status_code == 200
    assert contact["id"] not in {c["id"] for c in same_day.json()["data"]}
    assert all(c["updated_at"] >= (updated // DAY + 1) * DAY for c in same_day.json()["data"])
    assert contact["id"] in {c["id"] for c in day_before.json()["data"]}
    day_ids = {c["id"] for c in whole_day.json()["data"]}
    assert contact["id"] in day_ids
    assert all(c["updated_at"] // DAY == updated // DAY for c in whole_day.json()["data"])


def test_given_date_field_when_searching_with_unsupported_operator_then_400(
    api: httpx.Client,
) -> None:
    for op in ("!=", ">=", "<=", "IN", "NIN"):
        value: Any = [1] if op in ("IN", "NIN") else 1_700_000_000
        resp = api.post(
            "/contacts/search",
            json={"query": {"field": "created_at", "operator": op, "value": value}},
        )
        assert resp.status_code == 400, op
        assert _error_code(resp) == "parameter_invalid"


def test_given_three_levels_or_sixteen_filters_when_searching_then_400(api: httpx.Client) -> None:
    leaf = {"field": "role", "operator": "=", "value": "user"}
    too_deep = {"operator": "AND", "value": [{"operator": "OR", "value": [
        {"operator": "AND", "value": [leaf]}]}]}  # fmt: skip
    two_levels = {"operator": "AND", "value": [{"operator": "OR", "value": [leaf, leaf]}]}
    too_many = {"operator": "OR", "value": [leaf] * 16}

    assert api.post("/contacts/search", json={"query": too_deep}).status_code == 400
    assert api.post("/contacts/search", json={"query": too_many}).status_code == 400
    assert api.post("/contacts/search", json={"query": two_levels}).status_code == 200
    fifteen = api.post("/contacts/search", json={"query": {"operator": "OR", "value": [leaf] * 15}})
    assert fifteen.status_code == 200


# -- search pagination -----------------------------------------------------------------------


def test_given_search_cursor_in_body_when_paging_then_next_page_has_no_overlap(
    api: httpx.Client,
) -> None:
    query = {"field": "role", "operator": "=", "value": "user"}
    first = api.post("/contacts/search", json={"query": query, "pagination": {"per_page": 5}})
    cursor = first.json()["pages"]["next"]["starting_after"]
    second = api.post(
        "/contacts/search",
        json={"query": query, "pagination": {"per_page": 5, "starting_after": cursor}},
    )

    first_ids = [c["id"] for c in first.json()["data"]]
    second_ids = [c["id"] for c in second.json()["data"]]
    assert len(first_ids) == len(second_ids) == 5
    assert not set(first_ids) & set(second_ids)
    assert second.json()["pages"]["page"] == 2


def test_given_search_cursor_in_query_string_when_searching_then_page_one_is_returned_again(
    api: httpx.Client,
) -> None:
    query = {"field": "role", "operator": "=", "value": "user"}
    first = api.post("/contacts/search", json={"query": query, "pagination": {"per_page": 5}})
    cursor = first.json()["pages"]["next"]["starting_after"]
    again = api.post(
        "/contacts/search",
        params={"starting_after": cursor},
        json={"query": query, "pagination": {"per_page": 5}},
    )

    assert again.status_code == 200
    assert [c["id"] for c in again.json()["data"]] == [c["id"] for c in first.json()["data"]]


def test_given_sort_descending_when_searching_then_pages_follow_full_timestamp_order(
    api: httpx.Client,
) -> None:
    body: dict[str, Any] = {
        "query": {"field": "updated_at", "operator": ">", "value": 0},
        "pagination": {"per_page": 7},
        "sort": {"field": "updated_at", "order": "descending"},
    }
    seen: list[int] = []
    while True:
        page = api.post("/contacts/search", json=body).json()
        seen += [c["updated_at"] for c in page["data"]]
        nxt = page["pages"].get("next")
        if not nxt:
            break
        body["pagination"]["starting_after"] = nxt["starting_after"]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == page["total_count"]


def test_given_per_page_above_150_when_listing_or_searching_then_400(api: httpx.Client) -> None:
    listed = api.get("/contacts", params={"per_page": 151})
    searched = api.post(
        "/contacts/search",
        json={"query": {"field": "role", "operator": "=", "value": "user"},
              "pagination": {"per_page": 151}},
    )  # fmt: skip
    conversations = api.get("/conversations", params={"per_page": 151})
    ok = api.get("/contacts", params={"per_page": 150})

    assert listed.status_code == searched.status_code == conversations.status_code == 400
    assert _error_code(listed) == "parameter_invalid"
    assert ok.status_code == 200


# -- contacts lifecycle ----------------------------------------------------------------------


def test_given_seeded_lifecycles_when_listing_contacts_then_merged_and_deleted_are_hidden(
    sandbox: Sandbox, api: httpx.Client
) -> None:
    listed = _all_contacts(api)
    live = sandbox.store.count("intercom", "contacts", LIVE)
    archived = sandbox.store.count("intercom", "contacts", ARCHIVED)
    merged = sandbox.store.count("intercom", "contacts", MERGED)
    total = sandbox.store.count("intercom", "contacts", None)

    assert len(listed) == len({c["id"] for c in listed}) == live + archived
    assert len(listed) < total or merged == 0
    assert sum(1 for c in listed if c["archived"]) == archived


def test_given_new_contact_when_created_updated_archived_deleted_then_vendor_shapes(
    api: httpx.Client,
) -> None:
    created = api.post(
        "/contacts", json={"email": "new.person@example.org", "external_id": "X-1", "name": "N"}
    )
    cid = created.json()["id"]
    duplicate = api.post("/contacts", json={"email": "new.person@example.org"})
    updated = api.put(f"/contacts/{cid}", json={"name": "New Name"})
    archived = api.post(f"/contacts/{cid}/archive")
    found = api.get("/contacts/find_by_external_id/X-1")
    deleted = api.delete(f"/contacts/{cid}")
    gone = api.get(f"/contacts/{cid}")

    assert created.status_code == 200 and len(cid) == 24
    assert duplicate.status_code == 409
    assert _error_code(duplicate) == "conflict"
    assert cid in duplicate.json()["errors"][0]["message"]
    assert updated.json()["name"] == "New Name"
    assert archived.json() == {"id": cid, "external_id": "X-1", "type": "contact", "archived": True}
    assert found.json()["id"] == cid
    assert deleted.json() == {"id": cid, "external_id": "X-1", "type": "contact", "deleted": True}
    assert gone.status_code == 404


def test_given_unknown_custom_attribute_when_writing_then_400_until_the_attribute_exists(
    api: httpx.Client,
) -> None:
    company = {"company_id": "ACME-NEW", "name": "Acme", "custom_attributes": {"tier": "gold"}}
    rejected = api.post("/companies", json=company)
    created_attr = api.post(
        "/data_attributes", json={"name": "tier", "model": "company", "data_type": "string"}
    )
    duplicate_attr = api.post(
        "/data_attributes", json={"name": "tier", "model": "company", "data_type": "string"}
    )
    accepted = api.post("/companies", json=company)
    wrong_type = api.post(
        "/companies", json={"company_id": "ACME-NEW", "custom_attributes": {"seats": "many"}}
    )

    assert rejected.status_code == 400 and _error_code(rejected) == "parameter_invalid"
    assert created_attr.json()["full_name"] == "custom_attributes.tier"
    assert duplicate_attr.status_code == 400 and _error_code(duplicate_attr) == "parameter_invalid"
    assert accepted.json()["custom_attributes"]["tier"] == "gold"
    assert wrong_type.status_code == 400


# -- companies -------------------------------------------------------------------------------


def test_given_same_company_id_when_posting_twice_then_one_company_is_updated(
    api: httpx.Client,
) -> None:
    first = api.post("/companies", json={"company_id": "C-42", "name": "Before"}).json()
    second = api.post("/companies", json={"company_id": "C-42", "name": "After", "size": 9}).json()
    changed_id = api.put(f"/companies/{first['id']}", json={"company_id": "C-43"})
    by_company_id = api.get("/companies", params={"company_id": "C-42"}).json()

    assert first["id"] == second["id"]
    assert second["name"] == "After" and second["size"] == 9
    assert changed_id.status_code == 400
    assert by_company_id["data"][0]["id"] == first["id"]
    missing = api.get("/companies", params={"company_id": "nope"})
    assert missing.status_code == 404 and _error_code(missing) == "company_not_found"


def test_given_companies_without_users_when_listing_then_only_companies_with_users_are_listed(
    api: httpx.Client,
) -> None:
    api.post("/companies", json={"company_id": "EMPTY-1", "name": "No users"})
    listed: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api.post("/companies/list", params={"page": page, "per_page": 7}).json()
        listed += body["data"]
        if page >= body["pages"]["total_pages"]:
            break
        page += 1

    assert listed and all(c["user_count"] >= 1 for c in listed)
    assert "EMPTY-1" not in {c["company_id"] for c in listed}
    assert len(listed) == body["total_count"]
    stamps = [c["last_request_at"] for c in listed]
    assert stamps == sorted(stamps, reverse=True)


def test_given_contact_when_attaching_company_then_user_count_and_listing_follow(
    api: httpx.Client,
) -> None:
    company = api.post("/companies", json={"company_id": "ATTACH-1", "name": "Attach"}).json()
    contact = api.post("/contacts", json={"email": "attach@example.org"}).json()
    attached = api.post(f"/contacts/{contact['id']}/companies", json={"id": company["id"]})
    listed = api.get(f"/contacts/{contact['id']}/companies").json()
    unknown = api.post(f"/contacts/{contact['id']}/companies", json={"id": "0" * 24})

    assert attached.json()["user_count"] == 1
    assert [c["id"] for c in listed["data"]] == [company["id"]]
    assert unknown.status_code == 404 and _error_code(unknown) == "company_not_found"


def test_given_open_scroll_when_second_scroll_starts_then_error_until_it_expires(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(
        vendors=("intercom",), size=40,
        options={"intercom": {"scroll_ttl_seconds": 0.5, "scroll_page_size": 3}},
    )  # fmt: skip
    with _client(sandbox) as api:
        first = api.get("/companies/scroll")
        second = api.get("/companies/scroll")
        sandbox.ctx.clock.advance(0.7)
        stale = api.get("/companies/scroll", params={"scroll_param": first.json()["scroll_param"]})
        restarted = api.get("/companies/scroll")

    assert first.status_code == 200 and len(first.json()["data"]) == 3
    assert first.json()["pages"] is None and first.json()["total_count"] is None
    assert second.status_code == 400 and _error_code(second) == "scroll_exists"
    assert stale.status_code == 404
    assert restarted.status_code == 200
    assert restarted.json()["scroll_param"] != first.json()["scroll_param"]


def test_given_scroll_when_followed_to_the_end_then_every_live_company_once_and_empty_last_page(
    sandbox: Sandbox, api: httpx.Client
) -> None:
    ids: list[str] = []
    param = None
    while True:
        body = api.get("/companies/scroll", params={"scroll_param": param} if param else {}).json()
        if not body["data"]:
            break
        ids += [c["id"] for c in body["data"]]
        param = body["scroll_param"]
    after_end = api.get("/companies/scroll", params={"scroll_param": param})

    assert len(ids) == len(set(ids)) == sandbox.store.count("intercom", "companies", LIVE)
    assert after_end.status_code == 404  # the param expires at the end


# -- conversations ---------------------------------------------------------------------------


def test_given_conversations_when_listed_and_fetched_then_parts_only_on_single_get(
    api: httpx.Client,
) -> None:
    listed = api.get("/conversations", params={"per_page": 3}).json()
    one = api.get(f"/conversations/{listed['conversations'][0]['id']}").json()
    searched = api.post(
        "/conversations/search",
        json={"query": {"operator": "AND", "value": [
            {"field": "state", "operator": "=", "value": "closed"},
            {"field": "created_at", "operator": ">", "value": 0}]}},
    ).json()  # fmt: skip

    assert listed["type"] == "conversation.list" and len(listed["conversations"]) == 3
    assert "conversation_parts" not in listed["conversations"][0]
    assert one["conversation_parts"]["type"] == "conversation_part.list"
    assert listed["pages"]["per_page"] == 3 and listed["pages"]["next"]["starting_after"]
    assert searched["conversations"]
    assert all(c["state"] == "closed" for c in searched["conversations"])


# -- protocol: versions, auth, errors, limits ------------------------------------------------


def test_given_intercom_version_header_when_valid_absent_or_invalid_then_200_200_400(
    sandbox: Sandbox,
) -> None:
    for version in ("2.14", "2.16", "Unstable", "1.0", None):
        with _client(sandbox, version) as api:
            assert api.get("/admins").status_code == 200, version
    with _client(sandbox, "3.0") as api:
        bad = api.get("/admins")
    assert bad.status_code == 400 and _error_code(bad) == "intercom_version_invalid"


def test_given_bad_token_when_calling_then_401_error_list_without_rate_limit_headers(
    sandbox: Sandbox,
) -> None:
    resp = httpx.get(sandbox.urls["intercom"] + "/contacts", headers={"Authorization": "Bearer x"})
    missing = httpx.get(sandbox.urls["intercom"] + "/contacts")

    assert resp.status_code == missing.status_code == 401
    assert resp.json()["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert "X-RateLimit-Limit" not in resp.headers


def test_given_wrong_method_when_calling_then_405_with_allow(api: httpx.Client) -> None:
    resp = api.patch("/companies/list")
    contacts = api.request("DELETE", "/contacts")

    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    assert _error_code(resp) == "method_not_allowed"
    assert set(contacts.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_given_malformed_json_when_posting_then_400_error_list(api: httpx.Client) -> None:
    resp = api.post(
        "/contacts/search", content=b'{"query": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert _error_code(resp) == "parameter_invalid"
    assert "Traceback" not in resp.text


def test_given_scaled_down_window_when_exceeded_then_429_with_rate_limit_headers(
    make_sandbox: MakeSandbox,
) -> None:
    # 18 calls/min split into 10 s windows = 3 per window.
    sandbox = make_sandbox(
        vendors=("intercom",), size=5, rate_limits="real",
        options={"intercom": {"calls_per_minute": 18, "window_seconds": 10}},
    )  # fmt: skip
    with _client(sandbox) as api:
        responses = [api.get("/admins") for _ in range(7)]
    throttled = next(r for r in responses if r.status_code == 429)
    ok = [r for r in responses if r.status_code == 200]

    assert ok[0].headers["X-RateLimit-Limit"] == "3"
    assert int(ok[0].headers["X-RateLimit-Remaining"]) == 2
    assert int(ok[0].headers["X-RateLimit-Reset"]) > time.time() - 1
    assert throttled.json()["errors"] == [
        {"code": "rate_limit_exceeded", "message": "Exceeded rate limit of 3 in 10_seconds"}
    ]
    assert throttled.headers["X-RateLimit-Remaining"] == "0"


def test_given_faults_when_calling_then_intercom_429_and_503_shapes(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(
        vendors=("intercom",), size=5,
        faults=[Fault("rate_limit", vendor="intercom", path="/admins", retry_after=7),
                Fault("server_error", vendor="intercom", path="/me", status=503)],
    )  # fmt: skip
    with _client(sandbox) as api:
        throttled = api.get("/admins")
        unavailable = api.get("/me")

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert _error_code(throttled) == "rate_limit_exceeded"
    assert unavailable.status_code == 503 and _error_code(unavailable) == "service_unavailable"


def test_given_tags_and_notes_when_applied_to_a_contact_then_listed_on_it(
    api: httpx.Client,
) -> None:
    contact = api.post("/contacts", json={"email": "tagged@example.org"}).json()
    company = api.post("/companies", json={"company_id": "TAG-CO", "name": "Tagged"}).json()
    tag = api.post("/tags", json={"name": "vip", "companies": [{"company_id": "TAG-CO"}]}).json()
    tagged = api.post(f"/contacts/{contact['id']}/tags", json={"id": tag["id"]})
    note = api.post(f"/contacts/{contact['id']}/notes", json={"body": "Renewal at risk"}).json()
    notes = api.get(f"/contacts/{contact['id']}/notes").json()
    read_back = api.get(f"/contacts/{contact['id']}").json()

    assert tag == {"type": "tag", "id": tag["id"], "name": "vip"}
    assert tagged.json()["id"] == tag["id"]
    assert [t["id"] for t in read_back["tags"]["data"]] == [tag["id"]]
    assert api.get(f"/companies/{company['id']}").json()["tags"]["tags"][0]["name"] == "vip"
    assert "vip" in {t["name"] for t in api.get("/tags").json()["data"]}
    assert [n["id"] for n in notes["data"]] == [note["id"]]
    assert note["author"]["type"] == "admin" and "Renewal at risk" in note["body"]


def test_given_archived_data_attribute_when_listing_then_hidden_unless_include_archived(
    api: httpx.Client,
) -> None:
    attr = api.post(
        "/data_attributes", json={"name": "legacy", "model": "contact", "data_type": "string"}
    ).json()
    archived = api.put(f"/data_attributes/{attr['id']}", json={"archived": True})
    default = api.get("/data_attributes", params={"model": "contact"}).json()["data"]
    everything = api.get(
        "/data_attributes", params={"model": "contact", "include_archived": "true"}
    ).json()["data"]
    write = api.post(
        "/contacts", json={"email": "x@example.org", "custom_attributes": {"legacy": "a"}}
    )

    assert archived.json()["archived"] is True
    assert "legacy" not in {a["name"] for a in default}
    assert "legacy" in {a["name"] for a in everything}
    assert write.status_code == 400
