"""Fidelity with the official ``hubspot-api-client``: its generated models must parse every
response the emulator sends, and its calls must behave as against api.hubapi.com."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as AssociationsApiException
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.emulators import emulators

TOKEN = "pat-sandbox-hubspot"


@pytest.fixture
def sb(make_sandbox: Any, profile: str) -> Sandbox:
    return make_sandbox(vendors=("hubspot",), size=40, tie_block=12, profile=profile)


@pytest.fixture
def names(profile: str) -> dict[str, Any]:
    """Role -> the property of that world's portal (the emulator's field mapping)."""
    return dict(emulators()["hubspot"].field_mappings[profile])


def api(sandbox: Sandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sandbox.urls["hubspot"])


def count(sandbox: Sandbox, obj: str) -> int:
    return sandbox.store.count("hubspot", obj)


def test_given_client_when_paging_all_companies_then_count_matches_seed(
    sb: Sandbox, names: dict[str, Any]
) -> None:
    client = api(sb)
    pages, after, ids = 0, None, []
    while True:
        page = client.crm.companies.basic_api.get_page(
            limit=9, after=after, properties=["name", names["external_id"]]
        )
        pages += 1
        ids.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    every = client.crm.companies.get_all(properties=["name"])
    assert len(ids) == len(set(ids)) == count(sb, "companies")
    assert pages > 1
    assert len(every) == count(sb, "companies")
    assert all(r.properties["hs_object_id"] == r.id for r in every)


def test_given_client_when_searching_contacts_with_sort_then_pages_are_ordered(
    sb: Sandbox,
) -> None:
    client = api(sb)
    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[Filter(property_name="lastmodifieddate", operator="GT", value="0")]
            )
        ],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email", "lastmodifieddate"],
        limit=15,
        after="0",
    )
    seen: list[tuple[str, str]] = []
    total = 0
    while True:
        page = client.crm.contacts.search_api.do_search(public_object_search_request=request)
        total = page.total
        seen.extend((r.properties["lastmodifieddate"], r.id) for r in page.results)
        if page.paging is None:
            break
        request.after = page.paging.next.after
    assert total == count(sb, "contacts") == len(seen)
    assert seen == sorted(seen)


def test_given_client_when_batch_updating_and_upserting_then_read_back(
    sb: Sandbox, names: dict[str, Any]
) -> None:
    client = api(sb)
    uid, seats, plan = names["external_id"], names["seats"], names["plan"]
    first = client.crm.companies.basic_api.get_page(limit=2, properties=[uid])
    a, b = first.results
    client.crm.companies.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=a.id, properties={seats: "111"}),
                SimplePublicObjectBatchInput(id=b.id, properties={seats: "222"}),
            ]
        )
    )
    upserted = client.crm.companies.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id=a.properties[uid],
                    id_property=uid,
                    properties={plan: "enterprise"},
                ),
                SimplePublicObjectBatchInputUpsert(
                    id="ACC-9999999",
                    id_property=uid,
                    properties={"name": "Brand New"},
                ),
            ]
        )
    )
    flags = {r.properties[uid]: r.new for r in upserted.results}
    read = client.crm.companies.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=a.id), SimplePublicObjectId(id=b.id)],
            properties=[seats, plan],
            properties_with_history=[],
        )
    )
    got = {r.id: r.properties for r in read.results}
    assert flags == {a.properties[uid]: False, "ACC-9999999": True}
    assert got[a.id][seats] == "111" and got[a.id][plan] == "enterprise"
    assert got[b.id][seats] == "222"
    assert count(sb, "companies") == len(client.crm.companies.get_all())


def test_given_client_when_creating_property_twice_then_409_api_exception(
    sb: Sandbox, names: dict[str, Any]
) -> None:
    client = api(sb)
    spec = PropertyCreate(
        name="churn_risk",
        label="Churn risk",
        type="enumeration",
        field_type="select",
        group_name="companyinformation",
        options=[{"label": "High", "value": "high", "hidden": False, "displayOrder": 0}],
    )
    created = client.crm.properties.core_api.create("companies", property_create=spec)
    with pytest.raises(PropertiesApiException) as err:
        client.crm.properties.core_api.create("companies", property_create=spec)
    listed = client.crm.properties.core_api.get_all("companies")
    types = {p.name: (p.type, p.field_type) for p in listed.results}
    assert created.name == "churn_risk"
    assert err.value.status == 409
    assert types["churn_risk"] == ("enumeration", "select")
    assert types[names["renewal_date"]] == ("date", "date")
    assert types["createdate"] == ("datetime", "date")
    assert types["numberofemployees"] == ("number", "number")
    assert next(p for p in listed.results if p.name == names["external_id"]).has_unique_value


def test_given_client_when_reading_associations_and_owners_then_models_parse(
    sb: Sandbox,
) -> None:
    client = api(sb)
    company = client.crm.companies.basic_api.get_page(limit=1, associations=["contacts"]).results[0]
    linked = client.crm.associations.v4.basic_api.get_page("companies", company.id, "contacts")
    contact_id = str(linked.results[0].to_object_id)
    back = client.crm.associations.v4.basic_api.get_page("contacts", contact_id, "companies")
    owners = client.crm.owners.owners_api.get_page(limit=3)
    owner = client.crm.owners.owners_api.get_by_id(owners.results[0].id)
    default = client.crm.associations.v4.basic_api.create_default(
        "deals", client.crm.deals.basic_api.get_page(limit=1).results[0].id, "contacts", contact_id
    )
    with pytest.raises(AssociationsApiException):
        client.crm.associations.v4.basic_api.get_page("companies", company.id, "nonsense")
    assert company.associations["contacts"].results
    assert [str(r.to_object_id) for r in linked.results] == [
        r.id for r in company.associations["contacts"].results
    ]
    assert company.id in [str(r.to_object_id) for r in back.results]
    assert owners.paging is not None and len(owners.results) == 3
    assert owner.email == owners.results[0].email
    assert default.status == "COMPLETE"
    assert linked.results[0].association_types[0].category == "HUBSPOT_DEFINED"


def test_given_client_when_reading_every_object_type_then_models_parse(sb: Sandbox) -> None:
    client = api(sb)
    for obj in ("deals", "tickets", "feedback_submissions", "0-5"):
        page = client.crm.objects.basic_api.get_page(obj, limit=5)
        assert page.results, obj
        one = client.crm.objects.basic_api.get_by_id(obj, page.results[0].id)
        assert one.id == page.results[0].id
        assert one.created_at is not None and one.updated_at is not None
    tickets = client.crm.tickets.basic_api.get_page(
        limit=20, properties=["hs_ticket_priority", "csat", "hs_pipeline"]
    )
    assert {t.properties["hs_pipeline"] for t in tickets.results} == {"0"}
    assert {t.properties["hs_ticket_priority"] for t in tickets.results} <= {
        "LOW", "MEDIUM", "HIGH", "URGENT"
    }  # fmt: skip


def test_given_client_when_creating_and_reading_pipelines_then_models_parse(sb: Sandbox) -> None:
    from hubspot.crm.pipelines import PipelineInput, PipelineStageInput

    client = api(sb)
    stages = [
        PipelineStageInput(label="Open", display_order=0, metadata={"ticketState": "OPEN"}),
        PipelineStageInput(label="Done", display_order=1, metadata={"ticketState": "CLOSED"}),
    ]
    made = client.crm.pipelines.pipelines_api.create(
        "tickets", PipelineInput(label="Escalations", display_order=1, stages=stages)
    )
    listed = client.crm.pipelines.pipelines_api.get_all("tickets").results
    one = client.crm.pipelines.pipelines_api.get_by_id("tickets", made.id)
    assert [p.id for p in listed] == ["0", made.id]
    assert [s.metadata["ticketState"] for s in one.stages] == ["OPEN", "CLOSED"]
    deals = client.crm.pipelines.pipelines_api.get_all("deals").results[0]
    assert deals.id == "default" and deals.stages[-2].metadata["probability"] == "1.0"


ENGAGEMENTS_AND_COMMERCE = {
    "notes": ("crm.objects.notes", "hs_note_body"),
    "calls": ("crm.objects.calls", "hs_call_title"),
    "meetings": ("crm.objects.meetings", "hs_meeting_title"),
    "emails": ("crm.objects.emails", "hs_email_subject"),
    "products": ("crm.products", "name"),
    "line_items": ("crm.line_items", "name"),
    "quotes": ("crm.quotes", "hs_title"),
}


@pytest.mark.parametrize("obj", sorted(ENGAGEMENTS_AND_COMMERCE))
def test_given_client_when_using_other_standard_objects_then_they_are_served(
    sb: Sandbox, obj: str
) -> None:
    # Given HubSpot's other standard objects (engagements, commerce), through the client's own
    # API classes for them
    path, field = ENGAGEMENTS_AND_COMMERCE[obj]
    api_of: Any = api(sb)
    for part in path.split("."):
        api_of = getattr(api_of, part)
    model = importlib.import_module(f"hubspot.{path}")
    # when one is listed (empty), then created and listed again
    empty = api_of.basic_api.get_page(limit=5)
    made = api_of.basic_api.create(
        simple_public_object_input_for_create=model.SimplePublicObjectInputForCreate(
            properties={field: f"a {obj[:-1]}"}
            | ({"hs_timestamp": "2026-11-01T00:00:00Z"} if path.startswith("crm.objects") else {})
        )
    )
    page = api_of.basic_api.get_page(limit=5, properties=[field])
    # then the client parses every answer, and reads back what it wrote
    assert empty.results == []
    assert [(r.id, r.properties[field]) for r in page.results] == [(made.id, f"a {obj[:-1]}")]
    listed = api(sb).crm.properties.core_api.get_all(obj)
    assert field in {p.name for p in listed.results}
