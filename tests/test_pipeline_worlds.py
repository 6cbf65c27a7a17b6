"""The whole pipeline (tap-crm, target-health, write-back) on each world the sandbox can be
(issue #14): the seeded world with the field mapping of its custom fields; a realistic world,
shaped like a real customer's CRMs (long standard schemas, custom fields of their own names, a
renewals pipeline with numeric stage ids, no NPS object) with the mapping of those names; and a
vanilla world, plain CRMs with no custom field or object at all, with no mapping. All run end
to end; the vanilla one scores from what there is and names the facts no field holds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tapkit import run_tap, run_target, tap_config

from crm_connectors.sandbox.emulators import vendors
from target_health.store import open_store

ALL = tuple(vendors())


def _custom_hubspot_properties(sandbox: Any, token: str) -> set[str]:
    url = f"{sandbox.urls['hubspot']}/crm/v3/properties/companies"
    found = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    return {p["name"] for p in found.json()["results"] if not p.get("hubspotDefined")}


@pytest.mark.parametrize("profile", ["seeded", "vanilla", "realistic"])
def test_the_pipeline_runs_end_to_end_on_each_world(
    profile: str, make_sandbox: Any, tmp_path: Path
) -> None:
    # Given the sandbox as a world, and the config a team would give it: the seeded and the
    # realistic world with the mapping of their own custom fields (the emulators' field
    # mappings), the vanilla one with credentials only
    sandbox = make_sandbox(vendors=ALL, size=40, profile=profile)
    config = tap_config(sandbox, profile=profile)
    assert any(k.endswith("_field_mapping") for k in config) == (profile != "vanilla")
    if profile == "vanilla":
        # (a plain portal: no property but HubSpot's own)
        assert _custom_hubspot_properties(sandbox, config["hubspot_access_token"]) == set()
    # when the tap, then target-health with write-back run
    tap = run_tap(tmp_path / "tap", config)
    assert tap.returncode == 0, tap.stderr[-3000:]
    if profile == "vanilla":  # (and plain CRMs are what the tap found: no custom field at all)
        schemas = {m["stream"]: m["schema"] for m in tap.messages if m["type"] == "SCHEMA"}
        custom = {
            stream: sorted(
                name
                for name, prop in schema["properties"].items()
                if name.endswith("__c")
                or (name in ("custom_attributes", "organization_fields", "user_fields")
                    and (prop.get("properties") or {}))
            )
            for stream, schema in schemas.items()
        }  # fmt: skip
        assert not any(custom.values()), custom
        assert "salesforce_NPS_Response__c" not in schemas
    on = config | {"writeback": {"enabled": True, "max_band_change_share": 1.0}}
    first = run_target(tmp_path / "target", tap.messages, **on)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_target(tmp_path / "target", tap.messages, **on)
    assert again.returncode == 0, again.stderr[-3000:]
    # then every CRM got its fields written, and the rerun changed nothing
    store = open_store(f"sqlite:///{tmp_path / 'target' / 'health.sqlite'}")
    runs = [json.loads(c) for (c,) in store.query("SELECT counts FROM runs ORDER BY started_at")]
    done, rerun = runs[0]["writeback"], runs[1]["writeback"]
    assert not done.get("failed") and not done.get("error"), done
    assert set(done["by_crm"]) == set(ALL) and all(done["by_crm"].values()), done
    assert rerun["applied"] == 0 and rerun["items"] == 0, rerun
    # and accounts are scored from what each world holds
    scored = store.query("SELECT COUNT(*) FROM scores WHERE score IS NOT NULL")[0][0]
    assert scored > 0
    # and the facts no field holds are named, per stream: in the vanilla world ARR, seats and
    # renewal dates everywhere; in the seeded one only what its CRMs do not keep
    missing = runs[0]["unmapped_roles"]
    if profile == "vanilla":
        for stream in ("hubspot_companies", "salesforce_Account", "intercom_companies",
                       "zendesk_organizations"):  # fmt: skip
            assert {"arr", "seats", "renewal_date"} <= set(missing[stream]), stream
    else:
        assert not any({"arr", "seats"} & set(roles) for roles in missing.values()), missing
        # and every CRM's accounts carry the facts from the fields the mapping names
        accounts = [
            (str(k).split(":")[0], json.loads(d))
            for k, d in store.query("SELECT key, data FROM records WHERE entity = 'account'")
        ]
        for crm in ALL:
            mine = [a for c, a in accounts if c == crm and not a["deleted"]]
            assert mine and all(a["arr"] is not None and a["seats"] is not None for a in mine)
            assert sum(1 for a in mine if a["renewal_date"]) > len(mine) / 2, crm
        churned = [a for c, a in accounts if c in ("hubspot", "salesforce") and a["churned"]]
        assert churned, "no churned account from the churned markers"
    # and Salesforce opportunities are won and lost as the org's own stages say (the realistic
    # org's are "Signed", "Lost", "No Decision"), of a kind from its Type values (a plain org's
    # "New Customer" included)
    deals = {
        str(k).rsplit(":", 1)[1]: json.loads(d)
        for k, d in store.query(
            "SELECT key, data FROM records WHERE entity = 'deal' AND crm = 'salesforce'"
        )
    }
    outcomes = {"Closed Won": "won", "Signed": "won", "Closed Lost": "lost", "Lost": "lost"}
    opportunities = tap.records["salesforce_Opportunity"]
    assert {d["stage"] for d in deals.values()} >= {"won", "open"}
    for o in opportunities:
        assert deals[o["Id"]]["stage"] == outcomes.get(o["StageName"], "open"), o["StageName"]
        assert deals[o["Id"]]["kind"] != "other", o["Type"]
    if profile != "seeded":
        assert any(o["Type"] == "New Customer" for o in opportunities)
    if profile == "realistic":
        assert {o["StageName"] for o in opportunities} >= {"Signed", "Negotiation"}
        # and renewals in the portal's own pipeline (numeric stage ids) are won and lost as
        # its stages say
        renewals = {
            r["id"]: r["dealstage"]
            for r in tap.records["hubspot_deals"]
            if r.get("pipeline") == "31415926"
        }
        hubspot = {
            str(k).rsplit(":", 1)[1]: json.loads(d)
            for k, d in store.query(
                "SELECT key, data FROM records WHERE entity = 'deal' AND crm = 'hubspot'"
            )
        }
        outcome = {"31415929": "won", "31415930": "lost"}
        assert renewals and {hubspot[r]["stage"] for r in renewals} >= {"won", "open"}, renewals
        assert all(hubspot[r]["stage"] == outcome.get(s, "open") for r, s in renewals.items())
        # and they are renewals though their dealtype is empty: the mapping's deal_kind says
        # the Renewals pipeline holds renewals; the other deals keep their dealtype's kind
        typed = {r["id"]: r.get("dealtype") for r in tap.records["hubspot_deals"]}
        assert not any(typed[r] for r in renewals)
        assert all(hubspot[r]["kind"] == "renewal" for r in renewals)
        others = [d["kind"] for r, d in hubspot.items() if r not in renewals]
        assert {"new_business", "expansion"} <= set(others) and "renewal" not in others
    store.close()


def test_crm_sandbox_seed_makes_a_vanilla_world_on_request(tmp_path: Path) -> None:
    # Given the sandbox's command line, asked for a vanilla world
    db = tmp_path / "plain.sqlite"
    cmd = [sys.executable, "-m", "crm_connectors.sandbox.cli", "seed", "--db", str(db),
           "--size", "20", "--profile", "vanilla"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # then its CRMs hold no custom field: no HubSpot custom property, a plain Salesforce org,
    # no Intercom custom attribute, no Zendesk organization field
    conn = sqlite3.connect(db)
    meta = dict(conn.execute("SELECT vendor || '.' || name, value FROM meta").fetchall())
    assert json.loads(meta["hubspot.custom_properties"]) == {}
    assert json.loads(meta["salesforce.profile"]) == "vanilla"
    objects = dict(conn.execute("SELECT object, COUNT(*) FROM records GROUP BY object").fetchall())
    assert "NPS_Response__c" not in objects and "organization_fields" not in objects
    attrs = [json.loads(d) for (d,) in conn.execute(
        "SELECT data FROM records WHERE object = 'data_attributes'")]  # fmt: skip
    assert attrs and not [a for a in attrs if a.get("custom")]
    conn.close()


def test_tap_reads_a_realistic_salesforce_org_with_its_own_field_names(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a realistic Salesforce org (a real org's long field lists, compound addresses, its
    # own custom field names, no NPS object) and the mapping its admin would write, read in Bulk
    sandbox = make_sandbox(vendors=("salesforce",), size=40, profile="realistic")
    config = tap_config(sandbox, profile="realistic", salesforce_bulk_threshold=5)
    # when tap-crm runs
    tap = run_tap(tmp_path / "tap", config)
    # then it reads the org, exit 0
    assert tap.returncode == 0, tap.stderr[-3000:]
    accounts = tap.records["salesforce_Account"]
    assert accounts
    # and the accounts carry the org's custom fields, and no compound field
    assert all(r["Customer_Number__c"] and r["ARR__c"] is not None for r in accounts)
    schema = tap.schemas["salesforce_Account"]["properties"]
    assert not {"BillingAddress", "ShippingAddress"} & set(schema)
    assert not any({"BillingAddress", "ShippingAddress"} & set(r) for r in accounts)
    assert {"BillingCity", "ShippingCountry", "DunsNumber"} <= set(schema)
    contacts = tap.schemas["salesforce_Contact"]["properties"]
    assert not {"MailingAddress", "OtherAddress"} & set(contacts)
    # and the mapping marks the org's own fields, the personal ones marked PII
    assert schema["ARR__c"]["x-canonical"] == "arr"
    assert schema["Customer_Number__c"]["x-canonical"] == "external_id"
    assert contacts["MobilePhone"]["x-pii"] == "phone" and contacts["Birthdate"]["x-pii"]
    assert "salesforce_NPS_Response__c" not in tap.schemas
    # and the reads went through Bulk 2.0 query jobs, every one accepted (no compound field)
    routes = sandbox.ctx.stats.snapshot()["vendors"]["salesforce"]["routes"]
    created = routes["POST /services/data/{version}/jobs/query"]["statuses"]
    assert created.get("200") and set(created) == {"200"}, created
