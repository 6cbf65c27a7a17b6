"""The write-back adapters against the sandbox: owned fields created once, values written in the
API's largest batches and read back equal, per-record failures reported by id.

Given a sandbox serving one CRM and an adapter built from tap-crm's credential settings, when
target-health sets up its fields and writes scores, then each CRM's own read API shows exactly
the owned fields and values, nothing else changes, and write calls per N records are
ceil(N / batch maximum).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from tapkit import tap_config

from crm_connectors.errors import MissingScopes
from crm_connectors.http import RetryPolicy
from crm_connectors.hubspot.writer import HubSpotWriter
from crm_connectors.intercom.writer import IntercomWriter
from crm_connectors.salesforce.writer import SalesforceWriter
from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.store import LIVE
from target_health.writeback.crm import CrmWriter, writers
from target_health.writeback.fields import BANDS, FIELDS, SEGMENTS, normalize

ALL = ("hubspot", "salesforce", "intercom")
#: target-health's owned fields as each CRM defines them.
OWNED = {
    w.crm: w(None, FIELDS).fields  # type: ignore[arg-type]
    for w in (HubSpotWriter, SalesforceWriter, IntercomWriter)
}
OBJECT = {"hubspot": "companies", "salesforce": "Account", "intercom": "companies"}
#: Sandbox stats routes (method + template) of each adapter's calls.
WRITE_ROUTE = {
    "hubspot": "POST /crm/v3/objects/{t}/batch/{op}",
    "salesforce": "PATCH /services/data/{version}/composite/sobjects",
    "intercom": "PUT /companies/{company_id}",
}
READ_ROUTE = {
    "hubspot": "POST /crm/v3/objects/{t}/batch/{op}",
    "salesforce": "GET /services/data/{version}/query",
    "intercom": "GET /companies/{company_id}",
}
CREATE_ROUTE = {
    "hubspot": "POST /crm/v3/properties/{t}",
    "salesforce": "POST /services/data/{version}/tooling/sobjects/CustomField",
    "intercom": "POST /data_attributes",
}
#: Records per write call: each API's maximum [hubspot/API.md §1.5, salesforce/API.md §2.5,
#: intercom/API.md §3.3].
BATCH_MAX = {"hubspot": 100, "salesforce": 200, "intercom": 1}
#: Records per read call: HubSpot batch/read 100, Salesforce one SOQL per 200 ids, Intercom 1.
READ_BATCH = {"hubspot": 100, "salesforce": 200, "intercom": 1}
#: How each emulator withholds the right to create fields.
DENY = {
    "hubspot": {"missing_scopes": ["crm.schemas.companies.write"]},
    "salesforce": {"customize_application": False},
    "intercom": {"missing_scopes": ["write_data_attributes"]},
}
ALLOW = {
    "hubspot": {"missing_scopes": []},
    "salesforce": {"customize_application": True},
    "intercom": {"missing_scopes": []},
}
#: Each owned field's type as the CRM's read API reports it, by logical kind.
REPORTED_TYPE = {
    "hubspot": {
        "number": "number",
        "enum": "enumeration",
        "text": "string",
        "datetime": "datetime",
    },
    "salesforce": {
        "number": "double",
        "enum": "picklist",
        "text": "string",
        "datetime": "datetime",
    },
    "intercom": {"number": "float", "enum": "options", "text": "string", "datetime": "date"},
}
#: Keys of a stored record that any write moves (modification stamps).
STAMPS = {"hs_lastmodifieddate", "LastModifiedDate", "LastModifiedById", "SystemModstamp"}
STAMPS |= {"updated_at"}
#: Enough records that HubSpot (100) and Salesforce (200) need two write calls.
SIZE = {"hubspot": 200, "salesforce": 450, "intercom": 20}


# -- helpers -------------------------------------------------------------------------------------


@contextmanager
def adapter(sandbox: Sandbox, crm: str, **settings: Any) -> Iterator[CrmWriter]:
    """The one adapter ``writers`` builds for ``crm`` from tap-crm style settings; waits of the
    HTTP layer's retries are skipped (no real sleeping in tests)."""
    (writer,) = writers(tap_config(sandbox, [crm]) | settings, sleep=lambda _s: None)
    try:
        yield writer
    finally:
        writer.close()


def _admin(sandbox: Sandbox, method: str, path: str, body: Any = None) -> Any:
    reply = httpx.request(method, f"{sandbox.urls['admin']}/_sandbox/{path}", json=body)
    reply.raise_for_status()
    return reply.json()


def calls(sandbox: Sandbox, crm: str, route: str) -> int:
    vendor = _admin(sandbox, "GET", "stats")["vendors"].get(crm, {})
    return int(vendor.get("routes", {}).get(route, {}).get("calls", 0))


def reset_stats(sandbox: Sandbox) -> None:
    _admin(sandbox, "POST", "stats/reset")


def set_options(sandbox: Sandbox, crm: str, options: dict[str, Any]) -> None:
    _admin(sandbox, "PATCH", "options", {crm: options})


def live_ids(sandbox: Sandbox, crm: str, limit: int | None = None) -> list[str]:
    rows = sandbox.store.conn().execute(
        "SELECT id FROM records WHERE vendor = ? AND object = ? AND state = ? ORDER BY id",
        (crm, OBJECT[crm], LIVE),
    )
    ids = [str(r[0]) for r in rows]
    return ids[:limit] if limit is not None else ids


def client_of(writer: Any) -> Any:
    """The adapter's connector client (HubSpotClient, ...), for reads a person's tools make."""
    return writer.client


def definitions(writer: CrmWriter) -> dict[str, dict[str, Any]]:
    """Every field definition of the account object, through the CRM's own read API."""
    client = client_of(writer)
    if writer.crm == "hubspot":
        return {p["name"]: p for p in client.properties("companies")}
    if writer.crm == "salesforce":
        return {f["name"]: f for f in client.describe("Account")["fields"]}
    return {a["name"]: a for a in client.data_attributes("company")}


def reported_type(crm: str, definition: dict[str, Any]) -> str:
    return str(definition["data_type" if crm == "intercom" else "type"])


def owned_names(crm: str) -> list[str]:
    return [cf.name for cf in OWNED[crm]]


def other_values(sandbox: Sandbox, crm: str, rid: str) -> dict[str, Any]:
    """A stored record's values except the owned fields and modification stamps."""
    row = sandbox.store.get(crm, OBJECT[crm], rid)
    assert row is not None
    data = orjson.loads(row[5])  # seq, id, created_ms, updated_ms, state, data
    if crm == "hubspot":
        flat = dict(data["properties"])
    elif crm == "intercom":
        custom = data.pop("custom_attributes", {})
        flat = {**data, **custom}
    else:
        flat = dict(data)
    return {k: v for k, v in flat.items() if k not in set(owned_names(crm)) | STAMPS}


def desired(i: int) -> dict[str, Any]:
    """Varied values for record ``i``: some empty, some longer than 255 characters, datetimes
    with an offset rather than Z."""
    return {
        "score": round((i * 7.3) % 100, 1),
        "band": BANDS[i % len(BANDS)],
        "trend": round((i * 3.7) % 40 - 20, 1),
        "factors": f"usage down {i}%; " * (i * 11 % 30),
        "segment": SEGMENTS[i % len(SEGMENTS)],
        "nps": None if i % 5 == 0 else float(i % 201 - 100),
        "model_version": "health-v1",
        "updated_at": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00",
    }


def canonical(values: dict[str, Any]) -> dict[str, Any]:
    return {k: normalize(k, v) for k, v in values.items()}


# -- ensure_fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("crm", ALL)
def test_ensure_fields_creates_the_owned_fields_once_and_touches_no_other(
    make_sandbox, crm: str
) -> None:
    # Given a CRM without target-health's fields
    sandbox = make_sandbox(vendors=(crm,), size=10)
    with adapter(sandbox, crm) as writer:
        before = definitions(writer)
        assert not set(owned_names(crm)) & set(before)
        # when setup only reports, then every owned field is missing and nothing is created
        dry = writer.ensure_fields(create=False)
        assert dry.missing == owned_names(crm) and not dry.created
        assert all(name in dry.message for name in owned_names(crm))
        assert calls(sandbox, crm, CREATE_ROUTE[crm]) == 0
        # when setup runs
        first = writer.ensure_fields()
        # then it creates each owned field, visible through the CRM's read API with its type
        assert first.created == owned_names(crm)
        assert first.ok and not first.missing
        after = definitions(writer)
        for cf in OWNED[crm]:
            assert reported_type(crm, after[cf.name]) == REPORTED_TYPE[crm][cf.field.kind], cf
        # and the pick lists hold the bands and segments
        band = after[OWNED[crm][1].name]
        options = {
            "hubspot": lambda d: [o["value"] for o in d["options"]],
            "salesforce": lambda d: [p["value"] for p in d["picklistValues"]],
            "intercom": lambda d: d["options"],
        }[crm]
        assert options(band) == list(BANDS)
        if crm == "hubspot":  # in their own property group
            assert {after[n]["groupName"] for n in owned_names(crm)} == {"customer_health"}
        # and every field it does not own is exactly as it was
        assert {n: d for n, d in after.items() if n not in owned_names(crm)} == before
        # when setup runs again, then it finds them all and creates nothing
        second = writer.ensure_fields()
        assert (second.created, second.existing, second.missing) == ([], owned_names(crm), [])
        assert calls(sandbox, crm, CREATE_ROUTE[crm]) == len(owned_names(crm))


@pytest.mark.parametrize("crm", ALL)
def test_without_permission_setup_lists_the_exact_fields_to_create(make_sandbox, crm: str) -> None:
    # Given credentials that may not create fields
    sandbox = make_sandbox(vendors=(crm,), size=5, options={crm: DENY[crm]})
    with adapter(sandbox, crm) as writer:
        # when setup runs
        report = writer.ensure_fields()
        # then it creates nothing and reports every owned field as missing
        assert report.created == [] and report.missing == owned_names(crm)
        assert not set(owned_names(crm)) & set(definitions(writer))
        # and its message names each field with its type, for a person to create by hand
        for cf in OWNED[crm]:
            assert cf.describe() in report.message, cf.name
        if crm == "hubspot":  # and the scope to grant instead
            assert "crm.schemas.companies.write" in report.message
        # when the permission is granted and setup runs again, then the fields are created
        set_options(sandbox, crm, ALLOW[crm])
        again = writer.ensure_fields()
        assert again.created == owned_names(crm) and again.ok


def test_salesforce_fields_hidden_by_field_level_security_are_granted_with_a_permission_set(
    make_sandbox,
) -> None:
    # Given an org that hides new fields from the API user until field-level security is granted
    sandbox = make_sandbox(
        vendors=("salesforce",), size=5, options={"salesforce": {"custom_field_requires_fls": True}}
    )
    names = owned_names("salesforce")
    with adapter(sandbox, "salesforce") as writer:
        # when setup runs without a permission set to grant through
        first = writer.ensure_fields()
        # then it creates the fields but reports them not writable, with what to grant
        assert first.created == names and first.missing == names
        assert "field-level security" in first.message
        assert "salesforce_permission_set_id" in first.message
        assert not set(names) & set(definitions(writer))
        # and a second run does not create them again: they exist, hidden
        second = writer.ensure_fields()
        assert second.created == [] and second.existing == names and second.missing == names
    # when setup runs with a permission set id
    with adapter(
        sandbox, "salesforce", salesforce_permission_set_id="0PS5g0000000001AAA"
    ) as writer:
        third = writer.ensure_fields()
        # then it grants Read and Edit, and the fields are visible and writable
        assert third.ok and third.created == []
        assert all(definitions(writer)[n]["updateable"] for n in names)
        rid = live_ids(sandbox, "salesforce", 1)[0]
        assert writer.write([(rid, {"score": 42.0})])[0].ok
        assert writer.read([rid])[rid]["score"] == 42.0


# -- write and read ------------------------------------------------------------------------------


@pytest.mark.parametrize("crm", ALL)
def test_write_then_read_gives_the_same_values_in_batches_of_the_api_maximum(
    make_sandbox, crm: str
) -> None:
    # Given a CRM with the owned fields and many account records
    sandbox = make_sandbox(vendors=(crm,), size=SIZE[crm])
    ids = live_ids(sandbox, crm, 6 if crm == "intercom" else None)
    assert len(ids) >= 6
    with adapter(sandbox, crm) as writer:
        assert writer.ensure_fields().ok
        assert writer.batch_max == BATCH_MAX[crm]
        assert crm == "intercom" or len(ids) > BATCH_MAX[crm]  # several batches
        others = {rid: other_values(sandbox, crm, rid) for rid in ids}
        changes = [(rid, desired(i)) for i, rid in enumerate(ids)]
        reset_stats(sandbox)
        # when every record gets its values
        results = writer.write(changes)
        # then each succeeds, in ceil(N / batch maximum) write calls
        assert [(r.id, r.ok) for r in results] == [(rid, True) for rid in ids]
        assert calls(sandbox, crm, WRITE_ROUTE[crm]) == math.ceil(len(ids) / BATCH_MAX[crm])
        # when they are read back
        reset_stats(sandbox)
        got = writer.read(ids)
        # then they equal what was written, in canonical form, read in the API's largest batches
        assert got == {rid: canonical(values) for rid, values in changes}
        assert calls(sandbox, crm, READ_ROUTE[crm]) == math.ceil(len(ids) / READ_BATCH[crm])
    long_text = got[ids[5]]["factors"]  # 25 repeats: cut to 255 characters with an ellipsis
    assert len(long_text) == 255 and long_text.endswith("…")
    first = got[ids[1]]
    assert isinstance(first["score"], float) and first["updated_at"] == "2026-03-02T01:15:00Z"
    assert got[ids[0]]["nps"] is None and got[ids[0]]["factors"] is None  # empty stays empty
    # and nothing but the owned fields changed on any record
    assert {rid: other_values(sandbox, crm, rid) for rid in ids} == others


@pytest.mark.parametrize("crm", ALL)
def test_an_invalid_value_or_a_deleted_record_fails_alone(make_sandbox, crm: str) -> None:
    # Given five records with the owned fields, one of them deleted in the CRM since
    sandbox = make_sandbox(vendors=(crm,), size=20)
    ids = live_ids(sandbox, crm, 5)
    with adapter(sandbox, crm) as writer:
        assert writer.ensure_fields().ok
        api = client_of(writer).api
        deleted = {
            "hubspot": ("DELETE", f"/crm/v3/objects/companies/{ids[2]}"),
            "salesforce": ("DELETE", f"/sobjects/Account/{ids[2]}"),
            "intercom": ("DELETE", f"/companies/{ids[2]}"),
        }[crm]
        api.request(*deleted)
        changes = [
            (ids[0], desired(1)),
            (ids[1], desired(2) | {"band": "excellent"}),  # not a band
            (ids[2], desired(3)),
            (ids[3], desired(4) | {"score": "high"}),  # not a number
            (ids[4], desired(6)),
        ]
        reset_stats(sandbox)
        # when the batch is written
        results = writer.write(changes)
        # then the invalid values fail before any call, the deleted record with the CRM's code,
        # and the other records are written
        code = {"hubspot": "OBJECT_NOT_FOUND", "salesforce": "ENTITY_IS_DELETED"}
        code["intercom"] = "company_not_found"
        assert [(r.id, r.ok, r.error_code, r.retriable) for r in results] == [
            (ids[0], True, None, False),
            (ids[1], False, "INVALID_VALUE", False),
            (ids[2], False, code[crm], False),
            (ids[3], False, "INVALID_VALUE", False),
            (ids[4], True, None, False),
        ]
        assert "band" in results[1].detail and "excellent" not in results[1].detail
        # and only the three valid records were sent, in ceil(3 / batch maximum) calls
        assert calls(sandbox, crm, WRITE_ROUTE[crm]) == math.ceil(3 / BATCH_MAX[crm])
        got = writer.read(ids)
    assert got[ids[0]] == canonical(desired(1)) and got[ids[4]] == canonical(desired(6))
    assert set(got[ids[1]].values()) == {None} and set(got[ids[3]].values()) == {None}
    assert ids[2] not in got  # deleted records are left out of reads


def test_hubspot_isolates_a_value_it_rejects_and_writes_the_rest_of_the_batch(
    make_sandbox,
) -> None:
    # Given the owned properties, and a person who removed the option "critical" from the band
    sandbox = make_sandbox(vendors=("hubspot",), size=40)
    ids = live_ids(sandbox, "hubspot", 10)
    assert len(ids) == 10
    with adapter(sandbox, "hubspot") as writer:
        assert writer.ensure_fields().ok
        props = client_of(writer).properties("companies")
        options = next(p for p in props if p["name"] == "chs_health_band")["options"]
        client_of(writer).api.request(
            "PATCH",
            "/crm/v3/properties/companies/chs_health_band",
            json={"options": [o for o in options if o["value"] != "critical"]},
        )
        # then setup notices the drift
        assert "lacks the options critical" in writer.ensure_fields(create=False).message
        changes = [(rid, desired(i) | {"band": "healthy"}) for i, rid in enumerate(ids)]
        changes[6] = (ids[6], desired(6) | {"band": "critical"})
        reset_stats(sandbox)
        # when a batch holds one record with that value (HubSpot refuses the whole batch)
        results = writer.write(changes)
        # then only that record fails, with HubSpot's code, and the nine others are written
        assert [r.id for r in results if not r.ok] == [ids[6]]
        assert results[6].error_code == "VALIDATION_ERROR" and not results[6].retriable
        sent = calls(sandbox, "hubspot", WRITE_ROUTE["hubspot"])
        assert 1 < sent <= 2 * len(ids) - 1
        got = writer.read(ids)
    assert [got[rid]["band"] for rid in ids] == ["healthy"] * 6 + [None] + ["healthy"] * 3


# -- failures of the whole call ------------------------------------------------------------------


def test_a_token_without_write_scope_stops_the_write_naming_the_scope(make_sandbox) -> None:
    # Given owned properties, and a token that lost the companies write scope
    sandbox = make_sandbox(vendors=("hubspot",), size=5)
    ids = live_ids(sandbox, "hubspot", 2)
    with adapter(sandbox, "hubspot") as writer:
        assert writer.ensure_fields().ok
        set_options(sandbox, "hubspot", {"missing_scopes": ["crm.objects.companies.write"]})
        # when it writes, then no record can succeed: the error is raised, naming the scope
        with pytest.raises(MissingScopes) as raised:
            writer.write([(rid, {"score": 50.0}) for rid in ids])
    assert raised.value.scopes == ("crm.objects.companies.write",)


#: The code of a 503: the vendor's own, or the error class when the body has none (HubSpot).
OUTAGE_CODE = {
    "hubspot": "ServerError",
    "salesforce": "SERVER_UNAVAILABLE",
    "intercom": "service_unavailable",
}
FAULT_PATH = {
    "hubspot": ("POST", "/crm/v3/objects/companies/batch/update"),
    "salesforce": ("PATCH", "/services/data/*/composite/sobjects"),
    "intercom": ("PUT", "/companies/*"),
}


@pytest.mark.parametrize("crm", ALL)
def test_an_outage_fails_the_write_as_retriable_and_sends_no_further_batch(
    make_sandbox, crm: str
) -> None:
    # Given records spanning several write calls, and a CRM whose write endpoint answers 503
    sandbox = make_sandbox(vendors=(crm,), size=SIZE[crm])
    ids = live_ids(sandbox, crm, 3 if crm == "intercom" else None)
    with adapter(sandbox, crm) as writer:
        assert writer.ensure_fields().ok
        method, path = FAULT_PATH[crm]
        fault = {"kind": "server_error", "vendor": crm, "method": method, "path": path}
        _admin(sandbox, "POST", "faults", fault)
        reset_stats(sandbox)
        changes = [(rid, {"score": 61.5}) for rid in ids]
        # when it writes
        results = writer.write(changes)
        # then every record fails as retriable: the first batch after the HTTP layer's retries,
        # the rest not sent at all
        assert all(not r.ok and r.retriable for r in results)
        first = BATCH_MAX[crm]
        assert {r.error_code for r in results[:first]} == {OUTAGE_CODE[crm]}
        assert {r.error_code for r in results[first:]} == {"NOT_SENT"}
        tries = calls(sandbox, crm, WRITE_ROUTE[crm])
        assert tries == RetryPolicy().max_tries  # the default, all on the first batch
        # when the CRM is back, then the same write succeeds
        _admin(sandbox, "DELETE", "faults")
        assert all(r.ok for r in writer.write(changes))
        assert {v["score"] for v in writer.read(ids).values()} == {61.5}
