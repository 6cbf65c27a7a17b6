"""The field mapping (issue #14; crm_connectors.roles): which CRM field holds which customer fact.

A real portal, org or workspace keeps ARR, seats, plan, renewal date... in fields of its own, or
not at all. With no ``<crm>_field_mapping`` the pipeline runs on what every CRM has, and says
which facts no field holds; a mapping points each fact at the customer's own field, checked at
discovery against the CRM's field list, and travels to target-health in the stream's SCHEMA;
a field the mapping names that the CRM lacks is one line naming it and the setting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tapkit import discover, run_tap, run_target, select, tap_config

from crm_connectors.canonical import deal_kind
from crm_connectors.errors import ConfigError
from crm_connectors.roles import Mark, Role, configured, flag, kind, mark, marks_of, value
from crm_connectors.sandbox.emulators import vendors
from target_health.store import open_store

MAPPINGS = [f"{crm}_field_mapping" for crm in vendors()]


def _accounts(store_path: Path) -> dict[str, dict[str, Any]]:
    store = open_store(f"sqlite:///{store_path}")
    try:
        rows = store.query("SELECT key, data FROM records WHERE entity = 'account'")
    finally:
        store.close()
    return {str(k): json.loads(d) for k, d in rows}


def test_with_no_field_mapping_the_pipeline_scores_what_it_can_and_names_the_rest(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given the sandbox's CRMs and a stranger's first config: credentials, no field mapping
    sandbox = make_sandbox(vendors=tuple(vendors()), size=30)
    config = {k: v for k, v in tap_config(sandbox).items() if k not in MAPPINGS}
    # when the tap and target-health run
    tap = run_tap(tmp_path / "tap", config)
    assert tap.returncode == 0, tap.stderr[-3000:]
    target = run_target(tmp_path / "target", tap.messages)
    # then both succeed
    assert target.returncode == 0, target.stderr[-3000:]
    # and the tap says, per CRM, which facts no field holds and which setting maps them
    said = [line for line in tap.stderr.splitlines() if "no field holds" in line]
    assert len(said) == len(vendors()), tap.stderr[-3000:]
    assert all("arr, for ARR" in line and "_field_mapping" in line for line in said)
    # and the accounts carry only what every CRM has: no ARR, seats or renewal date anywhere,
    # the standard ids and owners where the CRM has them (Intercom's company_id, Zendesk's
    # external_id, HubSpot's and Salesforce's owners)
    accounts = _accounts(tmp_path / "target" / "health.sqlite")
    assert accounts
    for key, account in accounts.items():
        assert account["arr"] is None and account["seats"] is None, key
        assert account["renewal_date"] is None and account["churned"] is None, key
        crm = key.split(":")[0]
        assert (account["external_id"] is not None) == (crm in ("intercom", "zendesk")), key
    assert all(a["plan"] for k, a in accounts.items() if k.startswith("intercom:"))
    assert any(a["owner_ref"] for k, a in accounts.items() if k.startswith("hubspot:"))
    assert any(a["owner_ref"] for k, a in accounts.items() if k.startswith("salesforce:"))
    # and no Salesforce NPS object is read (an org has none unless its admins made one)
    assert not [s for s in tap.counts if s.startswith("salesforce_NPS")]
    # and the run's counts name, per stream, the facts its records could not say
    store = open_store(f"sqlite:///{tmp_path / 'target' / 'health.sqlite'}")
    (counts,) = store.query("SELECT counts FROM runs")[0]
    missing = json.loads(counts)["unmapped_roles"]
    assert "seats" in missing["hubspot_companies"] and "csat" in missing["hubspot_tickets"]
    assert "external_id" not in missing["intercom_companies"]
    # and accounts are still scored from what there is (tickets, engagement, NPS, usage)
    scored = store.query("SELECT COUNT(*) FROM scores WHERE score IS NOT NULL")[0][0]
    store.close()
    assert scored > 0
    assert "Traceback" not in target.stderr


def test_a_mapped_field_of_the_customers_own_naming_is_where_the_fact_comes_from(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a HubSpot portal whose seats the mapping says are its number-of-employees property
    # and whose churned companies are those in a lifecycle stage of its own choosing
    sandbox = make_sandbox(vendors=("hubspot",), size=20)
    mapping = {"seats": "numberofemployees", "churned": {"field": "lifecyclestage",
               "values": ["Customer"]}, "arr": None}  # fmt: skip
    config = tap_config(sandbox) | {"hubspot_field_mapping": mapping}
    tap = run_tap(tmp_path / "tap", config)
    assert tap.returncode == 0, tap.stderr[-3000:]
    assert run_target(tmp_path / "target", tap.messages).returncode == 0
    # then each account's seats are that property's value, churned follows the values named
    # (case aside), and the fact the mapping turned off is empty
    records = {r["id"]: r for r in tap.records["hubspot_companies"]}
    accounts = _accounts(tmp_path / "target" / "health.sqlite")
    assert len(accounts) == len(records)
    for rid, record in records.items():
        account = accounts[f"hubspot:companies:{rid}"]
        employees = record.get("numberofemployees")
        assert account["seats"] == (None if employees is None else int(employees))
        assert account["churned"] is (record.get("lifecyclestage") == "customer")
        assert account["arr"] is None
    assert any(a["seats"] for a in accounts.values())


def test_a_field_the_mapping_names_that_the_crm_lacks_is_one_line_naming_it(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(vendors=("salesforce",), size=5)
    base = tap_config(sandbox)
    cases = [
        # a field the org does not have (a typo in the API name)
        ({"seats": "Seat__c"}, ("seats", "'Seat__c'", "Account")),
        # a role that does not exist
        ({"sets": "Seats__c"}, ("no role 'sets'",)),
        # an NPS object without the field that holds its score
        ({"nps_object": "NPS_Response__c"}, ("needs nps_score",)),
        # an NPS object the org does not have
        ({"nps_object": "Survey__c", "nps_score": "Score__c"}, ("Survey__c",)),
    ]
    for n, (mapping, words) in enumerate(cases):
        # Given a Salesforce field mapping that is wrong in one way
        config = base | {"salesforce_field_mapping": mapping}
        # when the tap runs
        run = run_tap(tmp_path / f"case{n}", config)
        # then it stops with one line naming what is wrong and the setting, no traceback
        assert run.returncode != 0, mapping
        lines = [line for line in run.stderr.splitlines() if "salesforce_field_mapping" in line]
        assert lines and all(w in lines[-1] for w in words), (mapping, run.stderr[-2000:])
        assert "Traceback" not in run.stderr and not run.records


def test_a_field_the_integration_user_cannot_see_is_named_with_the_likely_cause(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a real org's field that field-level security hides from the integration user
    sandbox = make_sandbox(vendors=("salesforce",), size=5, profile="realistic")
    config = tap_config(sandbox) | {"salesforce_field_mapping": {"arr": "Credit_Limit__c"}}
    # when a mapping points a role at it
    run = run_tap(tmp_path, config)
    # then the tap stops on one line that names the field and asks whether the user sees it
    assert run.returncode != 0 and not run.records
    line = [x for x in run.stderr.splitlines() if "salesforce_field_mapping" in x][-1]
    assert "'Credit_Limit__c'" in line and "can the integration see it" in line, line
    assert "Traceback" not in run.stderr


def test_the_catalog_shows_the_mapping_and_a_run_maps_by_its_own_settings(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a catalog discovered with the sandbox's mapping
    sandbox = make_sandbox(vendors=("hubspot",), size=10)
    config = tap_config(sandbox)
    catalog = discover(tmp_path / "discover", config)
    companies = next(e for e in catalog["streams"] if e["tap_stream_id"] == "hubspot_companies")
    # then it marks each mapped field with its role, for people to see
    marks = marks_of(companies["schema"])
    assert marks["seats"].path == ("seats",) and marks["owner"].path == ("hubspot_owner_id",)
    assert marks["churned"].values == ("other",)
    # and when a run is given that catalog with a changed mapping, its SCHEMA says the change
    # (the settings of the run, not those of the discovery)
    changed = config | {"hubspot_field_mapping": {"seats": "numberofemployees"}}
    run = run_tap(tmp_path / "run", changed, catalog=select(catalog, ["hubspot_companies"]))
    assert run.returncode == 0, run.stderr[-3000:]
    (schema,) = [m["schema"] for m in run.messages if m["type"] == "SCHEMA"]
    assert marks_of(schema)["seats"].path == ("numberofemployees",)
    assert "renewal_date" not in marks_of(schema)
    # and a mapped field the catalog deselects is not sent: its role is then unmapped
    for meta in companies["metadata"]:
        if meta["breadcrumb"] == ["properties", "seats"]:
            meta["metadata"]["selected"] = False
    only = select(catalog, ["hubspot_companies"])
    narrowed = run_tap(tmp_path / "narrowed", config, catalog=only)
    assert narrowed.returncode == 0, narrowed.stderr[-3000:]
    (schema,) = [m["schema"] for m in narrowed.messages if m["type"] == "SCHEMA"]
    assert "seats" not in schema["properties"] and "seats" not in marks_of(schema)
    assert "plan" in marks_of(schema)


# -- the mapping itself ---------------------------------------------------------------------------

ROLES = {"seats": Role("companies"), "churned": Role("companies"),
         "owner": Role("companies", "owner_id"), "plan": Role("companies", "plan.name"),
         "csat": Role("tickets")}  # fmt: skip


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        "acme_companies": {
            "type": "object",
            "properties": {
                "owner_id": {"type": ["string", "null"]},
                "tier": {"type": ["string", "null"]},
                "plan": {"type": ["object", "null"]},  # an object the CRM lists no fields of
                "custom": {"type": ["object", "null"], "properties": {"n": {"type": "integer"}}},
            },
        },
    }


def test_mark_checks_named_fields_and_skips_missing_defaults() -> None:
    schemas = _schemas()
    config = {"acme_field_mapping": {"seats": "custom.n", "churned": {"field": "tier",
              "values": ["Gone", "Lost"]}}}  # fmt: skip
    # Given a mapping of a nested field and a picklist, over defaults
    unmapped = mark("acme", ROLES, config, schemas, "Acme")
    found = marks_of(schemas["acme_companies"])
    # then the named fields and the defaults the object has are marked, the rest reported
    assert found == {
        "seats": Mark(("custom", "n")),
        "churned": Mark(("tier",), ("gone", "lost")),
        "owner": Mark(("owner_id",)),
        "plan": Mark(("plan", "name")),  # inside an unlisted object: taken as given
    }
    assert unmapped == []  # (tickets were not discovered: nothing to say of them)
    with_tickets = _schemas() | {"acme_tickets": {"type": "object", "properties": {}}}
    assert mark("acme", ROLES, config, with_tickets, "Acme") == ["csat"]
    # and a nested field under a listed object that lacks it is an error naming both
    bad = {"acme_field_mapping": {"seats": "custom.m"}}
    with pytest.raises(ConfigError, match=r"seats names 'custom.m'.*acme_field_mapping"):
        mark("acme", ROLES, bad, _schemas(), "Acme")
    # and a default the CRM lacks is no error: the role is unmapped
    schemas = _schemas()
    del schemas["acme_companies"]["properties"]["owner_id"]
    assert "owner" in mark("acme", ROLES, {}, schemas, "Acme")


def test_values_and_flags_are_read_where_the_marks_say() -> None:
    marks = {"seats": Mark(("custom", "n")), "churned": Mark(("tier",), ("gone", "lost")),
             "payment_issue": Mark(("late",))}  # fmt: skip
    assert value({"custom": {"n": 7}}, marks, "seats") == 7
    assert value({"custom": None}, marks, "seats") is None
    assert value({"custom": {"n": 7}}, marks, "arr") is None
    # a picklist: the named values (any case; one of a multi-select's) mean true
    assert flag({"tier": "Lost"}, marks, "churned") is True
    assert flag({"tier": "Active;Gone"}, marks, "churned") is True
    assert flag({"tier": "Active"}, marks, "churned") is False
    assert flag({"tier": None}, marks, "churned") is None
    # a checkbox: true/false in any of the forms CRMs send
    assert [flag({"late": v}, marks, "payment_issue") for v in (True, "true", "false", "?")] == [
        True, True, False, None,
    ]  # fmt: skip
    # and a malformed mapping is a one-line error naming the setting
    for bad in ({"seats": 3}, {"churned": {"field": "tier", "values": "gone"}}, ["seats"]):
        with pytest.raises(ConfigError, match="acme_field_mapping"):
            configured("acme", ROLES, {"acme_field_mapping": bad})


def test_a_deal_kind_mapping_says_which_values_mean_which_kind_and_else_the_standard_reading() -> (
    None
):
    roles = {"deal_kind": Role("deals", "dealtype", kinds=True)}
    schemas = {
        "acme_deals": {
            "type": "object",
            "properties": {
                "dealtype": {"type": ["string", "null"]},
                "pipeline": {"type": ["string", "null"]},
            },
        }
    }
    # Given a portal that keeps renewals and upsells in pipelines of their own
    config = {"acme_field_mapping": {"deal_kind": {"field": "pipeline", "values": {
        "renewal": ["Renewals-1", 31415926], "expansion": "upsell"}}}}  # fmt: skip
    assert mark("acme", roles, config, schemas, "Acme") == []
    marks = marks_of(schemas["acme_deals"])
    # then a deal in a listed pipeline has its kind, any case; any other takes the standard
    # reading of its deal type (the connector's), and a turned-off role none
    assert kind({"pipeline": "renewals-1"}, marks, "deal_kind") == "renewal"
    assert kind({"pipeline": "31415926"}, marks, "deal_kind") == "renewal"
    assert kind({"pipeline": "UPSELL"}, marks, "deal_kind") == "expansion"
    assert kind({"pipeline": "default"}, marks, "deal_kind") is None
    assert deal_kind(marks, {"pipeline": "Upsell"}, "new_business") == "expansion"
    assert deal_kind(marks, {"pipeline": "default"}, "new_business") == "new_business"
    assert deal_kind({}, {"pipeline": "Upsell"}, "new_business") == "other"
    # and the marks travel in the schema as kind -> values
    assert schemas["acme_deals"]["properties"]["pipeline"]["x-canonical-values"] == {
        "new_business": [],
        "renewal": ["renewals-1", "31415926"],
        "expansion": ["upsell"],
    }
    # and with no mapping the standard field is the role's, read the connector's way
    assert marks_of({"type": "object", "properties": {}}) == {}
    plain = {"acme_deals": {"type": "object", "properties": {"dealtype": {"type": "string"}}}}
    mark("acme", roles, {}, plain, "Acme")
    assert marks_of(plain["acme_deals"]) == {"deal_kind": Mark(("dealtype",))}
    # and a deal kind without its values, an unknown kind, a value given two kinds, each is
    # one line naming what is wrong and the setting
    cases = [
        ("pipeline", "without its values"),
        ({"field": "pipeline", "values": ["renewals"]}, "must be an object of kind"),
        ({"field": "pipeline", "values": {"churn": ["x"]}}, "no kind 'churn'"),
        ({"field": "pipeline", "values": {"renewal": ["x"], "expansion": ["X"]}},
         "'X' is listed for renewal and expansion"),
    ]  # fmt: skip
    for entry, words in cases:
        with pytest.raises(ConfigError, match=f"deal_kind.*{words}.*acme_field_mapping"):
            configured("acme", roles, {"acme_field_mapping": {"deal_kind": entry}})
