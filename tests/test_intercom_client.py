"""Fidelity with the official ``python-intercom`` client: its pagers and models against the
sandbox. The client parses leniently, so every payload is also validated strictly with the
client's own pydantic models (``model_validate``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from intercom import (
    AdminList,
    Company,
    CompanyScroll,
    Contact,
    ContactList,
    ConversationList,
    DataAttribute,
    DataAttributeList,
    Intercom,
    MultipleFilterSearchRequest,
    SingleFilterSearchRequest,
    StartingAfterPaging,
)
from intercom.conversations.types.conversation import Conversation

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.emulators import emulators
from crm_connectors.sandbox.store import ARCHIVED, LIVE

MakeSandbox = Callable[..., Sandbox]
TOKEN = "sandbox-intercom-token"
DAY = 86_400


def _search_all(search: Callable[..., Any], query: Any, per_page: int) -> list[Any]:
    """Page a search by hand: python-intercom 5.0.1's search pager re-sends the first
    ``pagination`` (no cursor), so iterating it would loop on page 1 forever."""
    items: list[Any] = []
    cursor = None
    while True:
        pager = search(
            query=query, pagination=StartingAfterPaging(per_page=per_page, starting_after=cursor)
        )
        items += pager.items or []
        nxt = pager.response.pages.next if pager.response.pages else None
        if nxt is None or not nxt.starting_after:
            return items
        cursor = nxt.starting_after


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox, profile: str) -> Sandbox:
    return make_sandbox(vendors=("intercom",), size=40, profile=profile)


@pytest.fixture
def client(sandbox: Sandbox) -> Intercom:
    return Intercom(base_url=sandbox.urls["intercom"], token=TOKEN)


@pytest.fixture
def raw(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
    with httpx.Client(base_url=sandbox.urls["intercom"], headers=headers) as http:
        yield http


def test_given_seeded_contacts_when_paging_with_client_then_all_visible_contacts_once(
    sandbox: Sandbox, client: Intercom, raw: httpx.Client
) -> None:
    contacts = list(client.contacts.list(per_page=7))
    page = raw.get("/contacts", params={"per_page": 7}).json()

    ids = [c.id for c in contacts]
    expected = sandbox.store.count("intercom", "contacts", LIVE) + sandbox.store.count(
        "intercom", "contacts", ARCHIVED
    )
    assert len(ids) == len(set(ids)) == expected
    assert all(isinstance(c, Contact) and c.type == "contact" for c in contacts)
    assert ContactList.model_validate(page).total_count == expected


def test_given_updated_at_search_when_paging_with_client_then_matches_day_rule(
    client: Intercom, raw: httpx.Client
) -> None:
    everyone = list(client.contacts.list(per_page=150))
    cutoff = sorted(c.updated_at or 0 for c in everyone)[len(everyone) // 2]
    query = SingleFilterSearchRequest(field="updated_at", operator=">", value=cutoff)

    found = _search_all(client.contacts.search, query, 4)
    body = raw.post(
        "/contacts/search",
        json={"query": {"field": "updated_at", "operator": ">", "value": cutoff},
              "pagination": {"per_page": 4}},
    ).json()  # fmt: skip

    next_day = (cutoff // DAY + 1) * DAY
    expected = {c.id for c in everyone if (c.updated_at or 0) >= next_day}
    assert {c.id for c in found} == expected
    assert len(found) == len(expected)
    assert ContactList.model_validate(body).pages is not None


def test_given_company_when_created_or_updated_with_client_then_read_back(
    client: Intercom, raw: httpx.Client
) -> None:
    created = client.companies.create_or_update(
        request={"company_id": "CLIENT-1", "name": "Client Co", "plan": "pro", "size": 12}
    )
    updated = client.companies.create_or_update(
        request={"company_id": "CLIENT-1", "name": "Client Co 2", "monthly_spend": 99}
    )
    found = client.companies.find(created.id)

    assert isinstance(created, Company) and created.id == updated.id == found.id
    assert found.name == "Client Co 2" and found.monthly_spend == 99 and found.size == 12
    Company.model_validate(raw.get(f"/companies/{created.id}").json())


def test_given_companies_when_scrolling_with_client_then_reaches_the_end(
    sandbox: Sandbox, client: Intercom, raw: httpx.Client
) -> None:
    companies = list(client.companies.scroll())
    listed = client.companies.list(per_page=5)

    ids = [c.id for c in companies]
    assert len(ids) == len(set(ids)) == sandbox.store.count("intercom", "companies", LIVE)
    assert all(isinstance(c, Company) for c in listed.items or [])
    CompanyScroll.model_validate(raw.get("/companies/scroll").json())
    # Not CompanyList.model_validate: the SDK types companies/list ``pages`` as
    # ``offset_pages`` while the 2.14 and 2.16 specs say cursor_pages (type "pages").
    page = raw.post("/companies/list", params={"per_page": 5}).json()
    assert page["pages"]["type"] == "pages"
    assert [Company.model_validate(c).id for c in page["data"]] == [
        c.id for c in listed.items or []
    ]


def test_given_conversations_when_listed_and_searched_with_client_then_models_parse(
    sandbox: Sandbox, client: Intercom, raw: httpx.Client
) -> None:
    listed = list(client.conversations.list(per_page=6))
    query = MultipleFilterSearchRequest(
        operator="AND",
        value=[
            SingleFilterSearchRequest(field="open", operator="=", value=True),
            SingleFilterSearchRequest(field="created_at", operator=">", value=0),
        ],
    )
    open_ones = _search_all(client.conversations.search, query, 3)

    assert len(listed) == sandbox.store.count("intercom", "conversations", LIVE)
    assert open_ones and all(c.open for c in open_ones)
    assert {c.id for c in open_ones} == {c.id for c in listed if c.open}
    ConversationList.model_validate(raw.get("/conversations", params={"per_page": 6}).json())
    full: dict[str, Any] = raw.get(f"/conversations/{listed[0].id}").json()
    assert Conversation.model_validate(full).conversation_parts is not None


def test_given_data_attributes_when_listed_and_created_with_client_then_models_parse(
    client: Intercom, raw: httpx.Client, profile: str
) -> None:
    before = client.data_attributes.list(model="company")
    created = client.data_attributes.create(
        request={"name": "health_score", "model": "company", "data_type": "integer"}
    )
    after = client.data_attributes.list(model="company")

    names = {a.name for a in after.data or []}
    seats = emulators()["intercom"].field_mappings[profile]["seats"]  # custom_attributes.<name>
    assert seats.split(".")[1] in {a.name for a in before.data or []}
    assert (
        isinstance(created, DataAttribute) and created.full_name == "custom_attributes.health_score"
    )
    assert "health_score" in names
    DataAttributeList.model_validate(
        raw.get("/data_attributes", params={"model": "contact"}).json()
    )


def test_given_admins_when_listed_with_client_then_models_parse(
    client: Intercom, raw: httpx.Client
) -> None:
    admins = client.admins.list()
    me = client.admins.identify()

    assert admins.admins and len(admins.admins) == 8
    assert me is not None and me.app is not None and me.app.timezone == "UTC"
    AdminList.model_validate(raw.get("/admins").json())
