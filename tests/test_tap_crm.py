"""tap-crm as a process against the sandbox: what a data engineer sees first.

Given a sandbox with the three CRMs, when tap-crm runs with a config file, then it writes one
stream per object with every record the CRM would return (archived and deleted ones flagged),
typed schemas from the CRM, STATE that resumes, and clear errors for bad settings.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tapkit import Ids, discover, run_tap, select, tap_config

from crm_connectors import registry
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED
from tap_crm.settings import CONFIG_SCHEMA
from target_health.target import CONFIG_SCHEMA as TARGET_CONFIG

#: Which sandbox record states each vendor's API returns to the tap, and which of those it
#: flags as deleted [hubspot/API.md §1.6, salesforce/API.md §2.2, intercom/API.md §3.5]:
#: HubSpot search + the archived list; Salesforce queryAll (recycle bin and merged-away rows,
#: IsDeleted); Intercom search (archived contacts).
RETURNED = {
    "hubspot": ((LIVE, ARCHIVED), (ARCHIVED,)),
    "salesforce": ((LIVE, ARCHIVED, MERGED), (ARCHIVED, MERGED)),
    "intercom": ((LIVE, ARCHIVED), (ARCHIVED,)),
}
INCREMENTAL = {
    "hubspot": ("companies", "contacts", "deals", "tickets", "feedback_submissions"),
    "salesforce": ("Account", "Contact", "Opportunity", "Case", "Task", "User"),
    "intercom": ("contacts", "conversations"),
}


def test_about_markdown_documents_every_setting() -> None:
    # Given the tap's settings, when a user asks for --about in markdown
    done = subprocess.run(
        [sys.executable, "-m", "tap_crm.tap", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    # then every setting is named in it, with its description
    settings = CONFIG_SCHEMA["properties"]
    for name, spec in settings.items():
        assert name in done.stdout, name
        first_words = " ".join(spec["description"].split()[:4])
        assert first_words in done.stdout, (name, first_words)
    # and the credentials are declared secret
    secret = {n for n, s in settings.items() if s.get("secret")}
    assert {"hubspot_access_token", "salesforce_refresh_token", "intercom_access_token"} <= secret
    assert {"pii_keys", "pii_hmac_keys", "hubspot_client_secret"} <= secret


def test_full_sync_emits_every_record_once_with_deletes_flagged(make_sandbox, tmp_path: Path):
    # Given a sandbox with the three CRMs
    sandbox = make_sandbox(size=60)
    # when tap-crm syncs everything
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    ids = Ids().add(run)
    store = sandbox.store
    for vendor, objects in INCREMENTAL.items():
        returned, deleted = RETURNED[vendor]
        for obj in objects:
            stream = f"{vendor}_{obj}"
            # then each object's stream holds each record the API returns, exactly once
            expected = sum(store.count(vendor, obj, s) for s in returned)
            assert sum(ids.seen[stream].values()) == expected, stream
            assert len(ids.seen[stream]) == expected, stream
            # and the deleted/archived ones carry _sdc_deleted_at
            flagged = [r for r in run.records[stream] if r["_sdc_deleted_at"]]
            assert len(flagged) == sum(store.count(vendor, obj, s) for s in deleted), stream
    # and the full-table streams are there too
    for stream in (
        "hubspot_owners",
        "hubspot_associations",
        "intercom_admins",
        "intercom_companies",
    ):
        assert run.counts[stream] > 0, stream
    # and every incremental stream's STATE holds a bookmark
    state = run.last_state
    assert state is not None
    for vendor, objects in INCREMENTAL.items():
        for obj in objects:
            bookmark = state["bookmarks"][f"{vendor}_{obj}"]
            assert bookmark["crm_bookmark"]["watermark"] > 0
            assert bookmark["replication_key_value"].endswith("Z")


def test_schemas_are_typed_from_the_crm(make_sandbox, tmp_path: Path) -> None:
    # Given a sandbox
    sandbox = make_sandbox(size=20)
    # when the tap discovers
    run = run_tap(tmp_path, tap_config(sandbox), args=["--discover"])
    assert run.returncode == 0, run.stderr[-3000:]
    catalog = json.loads(run.stdout)
    schemas = {s["tap_stream_id"]: s["schema"]["properties"] for s in catalog["streams"]}
    # then HubSpot number/bool/datetime properties are typed, not all strings
    deals = schemas["hubspot_deals"]
    assert "number" in deals["amount"]["type"]
    assert deals["hs_lastmodifieddate"]["format"] == "date-time"
    # and Salesforce custom fields come typed from describe
    custom = {n: p for n, p in schemas["salesforce_Account"].items() if n.endswith("__c")}
    assert custom, "no custom Salesforce fields discovered"
    assert any(p["type"] != ["string", "null"] for p in custom.values())
    # and Intercom custom attributes are typed from data attributes
    attrs = schemas["intercom_companies"]["custom_attributes"]["properties"]
    assert attrs and any(p["type"] != ["string", "null"] for p in attrs.values())
    # and PII fields are declared as encrypted strings, with their token columns
    email = schemas["hubspot_contacts"]["email"]
    assert email["type"] == ["string", "null"]
    assert "PII (email), encrypted" in email["description"]
    assert "email__token" in schemas["hubspot_contacts"]
    # and every stream has its key and the deleted flag
    for entry in catalog["streams"]:
        assert entry["key_properties"], entry["tap_stream_id"]
        assert "_sdc_deleted_at" in entry["schema"]["properties"]


def test_fields_added_after_the_catalog_are_left_out_until_rediscovery(
    make_sandbox, tmp_path: Path
) -> None:
    # Given a catalog discovered before a HubSpot property was added to companies, without the
    # field types tap-crm saves in it (a hand-written catalog, or one from another tool)
    sandbox = make_sandbox(vendors=("hubspot",), size=20)
    config = tap_config(sandbox, crms=["hubspot"])
    catalog = select(discover(tmp_path, config), ["hubspot_companies"])
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            meta["metadata"].pop("tap-crm-field-types", None)
    reply = httpx.post(
        f"{sandbox.urls['hubspot']}/crm/v3/properties/companies",
        headers={"Authorization": f"Bearer {config['hubspot_access_token']}"},
        json={"name": "added_later", "label": "Added later", "type": "string",
              "fieldType": "text", "groupName": "companyinformation"},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    # when the tap syncs with that catalog
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    # then every record matches the catalog's schema: the new field is not sent
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "hubspot_companies")
    known = set(entry["schema"]["properties"])
    records = [m["record"] for m in run.messages if m["type"] == "RECORD"]
    assert records and all(set(r) <= known for r in records)
    assert "added_later" in run.stderr  # named (a field name, not a value) in the log
    # and a new discovery offers it
    assert "added_later" in discover(tmp_path, config)["streams"][1]["schema"]["properties"]


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"hubspot_access_token": "pat-wrong-token"}, "hubspot_access_token"),
        ({"salesforce_refresh_token": "wrong-refresh"}, "salesforce_refresh_token"),
        ({"intercom_access_token": "wrong-intercom-token"}, "intercom_access_token"),
        ({"salesforce_objects": ["Subscripton__c"]}, "salesforce_objects"),
        ({"pii_keys": None}, "pii_keys"),
        ({"pii_keys": "t1:dG9vLXNob3J0"}, "pii_keys"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_setting(
    make_sandbox, tmp_path: Path, change: dict[str, object], setting: str
) -> None:
    # Given a sandbox and a config with one wrong setting
    sandbox = make_sandbox(size=10)
    config = {k: v for k, v in (tap_config(sandbox) | change).items() if v is not None}
    # when the tap runs
    run = run_tap(tmp_path, config)
    # then it fails, naming the setting, without a traceback
    assert run.returncode != 0
    assert setting in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    # and reads nothing when the setting is the run's; when it is a CRM's credentials, only
    # that CRM's streams fail (the others are read)
    read = {m["stream"].split("_")[0] for m in run.messages if m["type"] == "RECORD"}
    vendor = setting.split("_")[0]
    if setting.endswith(("_token", "_secret")):
        assert vendor not in read and read, read
    else:
        assert not read, read


def test_unreachable_host_is_named(tmp_path: Path) -> None:
    # Given a config pointing at a port where nothing listens
    config = {
        "crms": ["intercom"],
        "intercom_access_token": "tok-unreachable",
        "intercom_base_url": "http://127.0.0.1:9",
        "pii_default_mode": "drop",
    }
    # when the tap runs
    run = run_tap(tmp_path, config)
    # then it fails with one error line naming the vendor, the call and what happened
    assert run.returncode != 0
    assert re.search(r"ERROR .* tap-crm: intercom GET /\S+: connection failed", run.stderr)
    assert "check the setting 'intercom_base_url'" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


def test_a_base_url_where_another_web_server_answers_is_named(tmp_path: Path) -> None:
    # Given a HubSpot base URL where a plain web server answers (HTML 404s, not HubSpot's JSON)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = {
            "crms": ["hubspot"],
            "hubspot_access_token": "pat-not-hubspot",
            "hubspot_base_url": f"http://127.0.0.1:{server.server_address[1]}",
            "pii_default_mode": "drop",
        }
        # when the tap runs
        run = run_tap(tmp_path / "run", config)
    finally:
        server.shutdown()
    # then it fails with one line naming the setting to fix, without a traceback
    assert run.returncode != 0
    line = next(x for x in run.stderr.splitlines() if "no hubspot API at this address" in x)
    assert "check the setting 'hubspot_base_url'" in line
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize(("kind", "name", "schema"), [
    ("extractors", "tap-crm", CONFIG_SCHEMA),
    ("loaders", "target-health", TARGET_CONFIG),
])  # fmt: skip
def test_meltano_yml_declares_every_setting_and_marks_secrets_sensitive(
    kind: str, name: str, schema: dict[str, Any]
) -> None:
    # Given a plugin's settings and the project's meltano.yml
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((Path(__file__).parents[1] / "meltano.yml").read_text())
    plugin = next(p for p in project["plugins"][kind] if p["name"] == name)
    declared = {s["name"]: s for s in plugin["settings"]}
    # then it declares the plugin's own settings and every setting of each CRM the project
    # uses (Meltano passes only declared ones from the environment); a CRM whose connector is
    # installed but not used in this project is declared not at all
    crm_settings = {
        spec.name: set(spec.settings) | (set(spec.writer_settings) if kind == "loaders" else set())
        for spec in registry.specs()
    }
    used = {crm for crm, names in crm_settings.items() if names & set(declared)}
    unused = set().union(*(crm_settings[c] for c in set(crm_settings) - used))
    settings = {k: v for k, v in schema["properties"].items() if k not in unused}
    assert set(settings) <= set(declared)  # and the SDK's own: tests/test_plugin_definitions.py
    assert used, "meltano.yml uses no CRM"
    # and exactly the secret ones are sensitive, with kinds that match the JSON types
    # (number settings are strings in Meltano, read as numbers by the plugins: its "decimal"
    # kind fails on values from the environment in Meltano 4.4 - Decimal is not JSON
    # serializable)
    kinds = {"string": "string", "integer": "integer", "number": "string", "array": "array"}
    kinds |= {"object": "object", "boolean": "boolean"}
    special = {
        "start_date": "date_iso8601",
        "as_of": "date_iso8601",
        "earliest_time": "date_iso8601",
    }
    special |= {"pii_default_mode": "options"}
    for key, spec in settings.items():
        assert bool(declared[key].get("sensitive")) == bool(spec.get("secret")), key
        types = [spec["type"]] if isinstance(spec["type"], str) else spec["type"]
        json_type = next(t for t in types if t != "null")
        assert declared[key]["kind"] == special.get(key, kinds[json_type]), key


def test_salesforce_quota_guard_stops_cleanly_and_the_next_run_completes(
    make_sandbox, tmp_path: Path
) -> None:
    # Given a Salesforce org with little of its daily API allocation left (1,000 calls, the
    # tap keeping 985 in reserve) and 200-record query pages, beside Intercom
    sandbox = make_sandbox(
        vendors=("salesforce", "intercom"),
        size=300,
        rate_limits="real",
        options={"salesforce": {"daily_api_requests": 1000, "query_batch_max": 200}},
    )
    config = tap_config(sandbox, salesforce_quota_reserve=985)
    clean = Ids().add(run_tap(tmp_path / "clean", tap_config(sandbox, salesforce_quota_reserve=0)))
    httpx.patch(
        f"{sandbox.urls['admin']}/_sandbox/options",
        json={"salesforce": {"daily_api_requests": 1000}},  # a new day: usage starts again
    ).raise_for_status()
    # when the tap runs
    first = run_tap(tmp_path / "first", config)
    # then it stops Salesforce before the guard's limit, says so, and still succeeds
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stopped before the API quota runs out" in first.stderr
    assert "skipped, salesforce API quota guard tripped" in first.stderr
    got = Ids().add(first)
    sf_streams = [s for s in clean.seen if s.startswith("salesforce_")]
    assert sum(len(got.seen.get(s, {})) for s in sf_streams) < sum(
        len(clean.seen[s]) for s in sf_streams
    )
    # and Intercom is read in full regardless
    for stream in (s for s in clean.seen if s.startswith("intercom_")):
        assert got.sets()[stream] == clean.sets()[stream], stream
    # and given a new day's allocation, the rerun from its state completes Salesforce
    httpx.patch(
        f"{sandbox.urls['admin']}/_sandbox/options",
        json={"salesforce": {"daily_api_requests": 100_000}},
    ).raise_for_status()
    second = run_tap(tmp_path / "second", config, state=first.last_state)
    assert second.returncode == 0, second.stderr[-3000:]
    both = Ids().add(first).add(second).sets()
    for stream in sf_streams:
        assert both[stream] == clean.sets()[stream], stream
