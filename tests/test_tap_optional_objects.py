"""Objects are optional (issue #14): tap-crm runs on an org our seeder never shaped.

A real Salesforce org has the standard objects of its edition, visible to the integration user
only where its permission sets grant Read, and custom objects of its own. So tap-crm reads by
default only Account, Contact, Opportunity, Case, Task and User; one of those the org lacks or the
user cannot see is left out with a warning naming it, never a failed run; a custom object is read
when named in ``salesforce_objects`` or as the NPS object of ``salesforce_field_mapping`` (and
one named that does not exist is a setting to fix). A run given a catalog asks the CRM about the
streams it selects only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tapkit import discover, run_tap, select, tap_config

from crm_connectors.salesforce.resources import OBJECTS
from tap_crm.tap import TYPES_KEY

STANDARD = {f"salesforce_{o}" for o in OBJECTS}


def _salesforce_streams(catalog: dict[str, Any]) -> set[str]:
    return {s for e in catalog["streams"] if (s := e["tap_stream_id"]).startswith("salesforce_")}


def test_given_no_objects_named_then_only_the_standard_objects_are_read(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given the sandbox org (which has a custom NPS object) and a config that names no object,
    # as a stranger's first config would
    sandbox = make_sandbox(vendors=("salesforce",), size=10)
    config = tap_config(sandbox)
    config.pop("salesforce_field_mapping")  # (it names the NPS object)
    # when the tap discovers
    catalog = discover(tmp_path, config)
    # then it offers the standard objects only: no sandbox-invented object is a default
    assert set(OBJECTS) == {"Account", "Contact", "Opportunity", "Case", "Task", "User"}
    assert _salesforce_streams(catalog) == STANDARD
    # and naming the custom object adds its stream
    named = discover(tmp_path / "named", config | {"salesforce_objects": ["NPS_Response__c"]})
    assert _salesforce_streams(named) == STANDARD | {"salesforce_NPS_Response__c"}


def test_given_an_org_whose_user_cannot_see_case_then_the_others_are_read_and_case_is_named(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given an org whose integration user has no Read on Case, and without the NPS object
    sandbox = make_sandbox(
        vendors=("salesforce",),
        size=10,
        options={"salesforce": {"hidden_objects": ["Case", "NPS_Response__c"]}},
    )
    config = tap_config(sandbox)
    config.pop("salesforce_field_mapping")
    # when the tap discovers, then syncs
    catalog = discover(tmp_path / "discover", config)
    run = run_tap(tmp_path / "sync", config)
    # then discovery leaves Case out, and the sync reads every other object and exits 0
    assert _salesforce_streams(catalog) == STANDARD - {"salesforce_Case"}
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.counts) == STANDARD - {"salesforce_Case"}
    assert all(run.counts.values())
    # and one warning says which stream is left out and why, without a traceback
    warned = [line for line in run.stderr.splitlines() if "salesforce_Case is left out" in line]
    assert len(warned) == 1 and "cannot see" in warned[0], run.stderr[-3000:]
    assert "Traceback" not in run.stderr


def test_given_a_catalog_then_the_run_asks_only_about_the_streams_it_selects(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a catalog discovered on the org, selecting Account only, without the field types
    # discovery saves (as a catalog from an older tap-crm, or written by hand): each stream the
    # run builds asks describe
    sandbox = make_sandbox(vendors=("salesforce",), size=10)
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path / "discover", config), ["salesforce_Account"])
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            meta["metadata"].pop(TYPES_KEY, None)
    # and, since then, the user lost Read on Case and the custom NPS object was deleted
    sandbox.ctx.update_options("salesforce", {"hidden_objects": ["Case", "NPS_Response__c"]})
    # when the tap syncs with that catalog
    run = run_tap(tmp_path / "sync", config, catalog=catalog)
    # then it reads Account and stops at nothing it was not asked to read (the named NPS
    # object is gone, but not selected)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.counts) == {"salesforce_Account"} and run.counts["salesforce_Account"]
    assert "left out" not in run.stderr and "NPS_Response__c" not in run.stderr
