"""A run given a catalog from discovery asks no metadata API.

Discovery learns field types from HubSpot's properties API, Salesforce's describe and Intercom's
data attributes, and writes them into the catalog (stream metadata ``tap-crm-field-types``).
Given that catalog, as Meltano hands it to every scheduled run, the tap rebuilds its schemas, PII
plans and reads from it: no properties/describe/data_attributes call, for selected and
unselected streams alike, and the same SCHEMA and RECORD messages as a run that asked the APIs.
A catalog without the types (from an older tap-crm, or written by hand) or with unusable ones
makes those calls for the streams it selects; an unselected stream never asks.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from meltano.core.plugin.singer.catalog import (
    MetadataExecutor,
    SchemaExecutor,
    select_metadata_rules,
)
from meltano.core.plugin.singer.tap import config_metadata_rules, config_schema_rules
from tapkit import TapRun, discover, run_tap, tap_config

from crm_connectors.sandbox.app import Sandbox
from tap_crm.tap import TYPES_KEY

#: The metadata routes per vendor, and how many calls they take when every resource asks once.
METADATA_ROUTES = {
    "hubspot": ("GET /crm/v3/properties/{t}", 5),
    "salesforce": ("GET /services/data/{version}/sobjects/{sobject}/describe", 7),
    "intercom": ("GET /data_attributes", 3),
}
TYPED = {
    "hubspot": ["companies", "contacts", "deals", "tickets", "feedback_submissions"],
    "salesforce": ["Account", "Contact", "Opportunity", "Case", "Task", "User", "NPS_Response__c"],
    "intercom": ["contacts", "companies", "conversations"],
}
#: What a Meltano project selects: a few streams, some of each CRM left out.
SELECT = [
    "hubspot_contacts.*",
    "hubspot_owners.*",
    "salesforce_Account.*",
    "salesforce_Contact.*",
    "intercom_contacts.*",
    "intercom_companies.*",
]


def calls(sandbox: Sandbox) -> dict[str, Counter[str]]:
    """API calls per vendor and route since the last reset, then reset."""
    admin = sandbox.urls["admin"]
    vendors = httpx.get(f"{admin}/_sandbox/stats").json()["vendors"]
    httpx.post(f"{admin}/_sandbox/stats/reset").raise_for_status()
    return {
        v: Counter({route: r["calls"] for route, r in body["routes"].items()})
        for v, body in vendors.items()
    }


def metadata_calls(sandbox: Sandbox) -> dict[str, int]:
    made = calls(sandbox)
    return {v: made.get(v, Counter())[route] for v, (route, _) in METADATA_ROUTES.items()}


def root_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = next(m for m in entry["metadata"] if m["breadcrumb"] == [])["metadata"]
    return meta


def as_meltano(catalog: dict[str, Any]) -> dict[str, Any]:
    """``catalog`` after what Meltano does to a discovered catalog before each run
    (``SingerTap.apply_catalog_rules``): schema extras, deselect all, ``select`` patterns,
    metadata extras, then written out and read back as JSON."""
    catalog = copy.deepcopy(catalog)
    SchemaExecutor(
        config_schema_rules({"hubspot_contacts": {"jobtitle": {"type": ["string", "null"]}}})
    ).visit(catalog)  # type: ignore[attr-defined]  # added by Meltano's visit_with
    rules = [
        *select_metadata_rules(["!*.*"]),
        *select_metadata_rules(SELECT),
        *config_metadata_rules({"salesforce_Account": {"replication-method": "INCREMENTAL"}}),
    ]
    MetadataExecutor(rules).visit(catalog)  # type: ignore[attr-defined]
    loaded: dict[str, Any] = json.loads(json.dumps(catalog, indent=2))
    return loaded


def saved_types(catalog: dict[str, Any]) -> dict[str, Any]:
    return {e["tap_stream_id"]: root_metadata(e).get(TYPES_KEY) for e in catalog["streams"]}


def without_types(catalog: dict[str, Any]) -> dict[str, Any]:
    """``catalog`` as an older tap-crm wrote it: no field types."""
    catalog = copy.deepcopy(catalog)
    for entry in catalog["streams"]:
        root_metadata(entry).pop(TYPES_KEY, None)
    return catalog


def ok(run: TapRun) -> TapRun:
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_given_a_discovered_catalog_when_the_tap_syncs_with_it_then_no_metadata_call_is_made(
    make_sandbox, tmp_path: Path
) -> None:
    # Given a sandbox with the three CRMs and a config hashing PII (deterministic output, and
    # the PII plan still built from the schemas' marks)
    sandbox = make_sandbox(size=20)
    config = tap_config(sandbox, pii_default_mode="hash")
    # and the catalog discovery wrote, which asked every metadata API once per resource
    calls(sandbox)
    discovered = discover(tmp_path / "discover", config)
    assert metadata_calls(sandbox) == {v: n for v, (_, n) in METADATA_ROUTES.items()}
    # and holding each typed resource's field types in its stream metadata
    by_id = {e["tap_stream_id"]: e for e in discovered["streams"]}
    for vendor, objects in TYPED.items():
        for obj in objects:
            entry = root_metadata(by_id[f"{vendor}_{obj}"])[TYPES_KEY]
            assert entry["version"] == 1, (vendor, obj)
    assert root_metadata(by_id["hubspot_deals"])[TYPES_KEY]["types"]["amount"] == "number"
    account = root_metadata(by_id["salesforce_Account"])[TYPES_KEY]["types"]
    assert {"name": "Id", "type": "id", "nillable": False} in account
    assert root_metadata(by_id["intercom_companies"])[TYPES_KEY]["types"]
    assert TYPES_KEY not in root_metadata(by_id["hubspot_owners"])
    # and that catalog after Meltano's catalog rules (a few streams selected)
    catalog = as_meltano(discovered)
    assert saved_types(catalog) == saved_types(discovered)

    # when the tap syncs with it
    typed = ok(run_tap(tmp_path / "typed", config, catalog=catalog))
    # then no vendor's metadata API was called, for selected and unselected streams alike
    assert metadata_calls(sandbox) == {"hubspot": 0, "salesforce": 0, "intercom": 0}
    # and the selected streams were read
    assert set(typed.counts) == {pattern.removesuffix(".*") for pattern in SELECT}
    assert all(typed.counts.values())

    # when it syncs with the same catalog without the types (as an older tap-crm wrote it)
    untyped = ok(run_tap(tmp_path / "untyped", config, catalog=without_types(catalog)))
    # then each selected resource asks its metadata API once, and no unselected one does
    assert metadata_calls(sandbox) == {"hubspot": 1, "salesforce": 2, "intercom": 2}
    # and both runs wrote the same schemas (PII fields hashed the same way) and records
    assert typed.schemas == untyped.schemas
    assert typed.records == untyped.records
    assert "email__token" in typed.schemas["hubspot_contacts"]["properties"]


def test_given_unusable_types_in_the_catalog_when_the_tap_syncs_then_those_resources_ask_the_api(
    make_sandbox, tmp_path: Path
) -> None:
    # Given a discovered catalog selecting everything
    sandbox = make_sandbox(size=15)
    config = tap_config(sandbox, pii_default_mode="hash")
    catalog = discover(tmp_path / "discover", config)
    for entry in catalog["streams"]:
        root_metadata(entry)["selected"] = True
    good = ok(run_tap(tmp_path / "good", config, catalog=catalog))
    calls(sandbox)
    # and the same catalog with one stream's types broken per CRM: a list where a mapping
    # belongs, a format version this tap does not know, a kind Intercom does not have
    broken = copy.deepcopy(catalog)
    by_id = {e["tap_stream_id"]: root_metadata(e) for e in broken["streams"]}
    by_id["hubspot_contacts"][TYPES_KEY]["types"] = ["email", "string"]
    by_id["salesforce_Account"][TYPES_KEY]["version"] = 2
    by_id["intercom_companies"][TYPES_KEY]["types"]["seats"] = "money"
    # and a Salesforce field without its nillable flag
    by_id["salesforce_Case"][TYPES_KEY]["types"][0].pop("nillable")

    # when the tap syncs with it
    run = ok(run_tap(tmp_path / "broken", config, catalog=broken))
    # then exactly those resources asked their metadata API, once each
    assert metadata_calls(sandbox) == {"hubspot": 1, "salesforce": 2, "intercom": 1}
    # and one INFO line names them
    lines = [line for line in run.stderr.splitlines() if "field types for" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    for stream in ("hubspot_contacts", "salesforce_Account", "salesforce_Case"):
        assert stream in lines[0]
    assert "intercom_companies" in lines[0] and "INFO" in lines[0]
    # and the output is the same as with the good catalog
    assert run.schemas == good.schemas
    assert run.records == good.records


def test_given_a_catalog_naming_a_deleted_salesforce_field_then_the_error_says_to_rediscover(
    make_sandbox, tmp_path: Path
) -> None:
    # Given a catalog whose Account types name a field Salesforce no longer has (deleted by an
    # admin after discovery)
    sandbox = make_sandbox(vendors=("salesforce",), size=10)
    config = tap_config(sandbox)
    catalog = discover(tmp_path / "discover", config)
    for entry in catalog["streams"]:
        root_metadata(entry)["selected"] = entry["tap_stream_id"] == "salesforce_Account"
        if entry["tap_stream_id"] == "salesforce_Account":
            root_metadata(entry)[TYPES_KEY]["types"].append(
                {"name": "Retired_Score__c", "type": "double", "nillable": True}
            )
    # when the tap syncs with it
    run = run_tap(tmp_path / "run", config, catalog=catalog)
    # then the query is rejected and the run fails, saying how to fix it
    assert run.returncode == 1
    assert "INVALID_FIELD" in run.stderr
    assert "run discovery again (Meltano: --refresh-catalog)" in run.stderr
