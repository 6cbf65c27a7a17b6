"""tap-crm against malformed CRM responses: 16 kinds (sandbox fault ``malformed``) x 4 CRMs.

Each CRM's third API call is spoiled once: a captive portal's or gateway's HTML, a body that is
no JSON or no UTF-8, JSON of the wrong type, record lists missing, of the wrong type or holding
nulls, strings or object ids, numbers sent as text, a 16 MB page, JSON nested 100,000 deep.
Whatever comes back, the tap either heals it (a retry) and emits exactly the records of a clean
sync, or stops that CRM with one line and exit 1, without a traceback, having emitted only true
records and a STATE from which a rerun, once the CRM answers well again, completes the sync:
no record is lost and none is made up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tapkit import TapRun, discover, run_tap, tap_config

from crm_connectors.sandbox.app import Sandbox, SandboxConfig
from crm_connectors.sandbox.faults import MALFORMED
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec

VENDORS = ("hubspot", "salesforce", "intercom", "zendesk")
Keyed = dict[str, dict[str, dict[str, Any]]]
World = tuple[Sandbox, dict[str, Any], dict[str, Any], Keyed]


def _keyed(run: TapRun) -> Keyed:
    keys: dict[str, list[str]] = {}
    out: Keyed = {}
    for m in run.messages:
        if m["type"] == "SCHEMA":
            keys[m["stream"]] = list(m["key_properties"])
        elif m["type"] == "RECORD":
            rec = m["record"]
            key = ":".join(str(rec.get(k)) for k in keys[m["stream"]])
            out.setdefault(m["stream"], {})[key] = rec
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], World]]:
    """Per CRM, once: a seeded sandbox, the tap's config and catalog, and a clean sync."""
    made: dict[str, World] = {}

    def get(vendor: str) -> World:
        if vendor not in made:
            work = tmp_path_factory.mktemp(vendor)
            seed(work / "sandbox.sqlite", WorldSpec(size=20, seed=7), (vendor,))
            sandbox = Sandbox(
                SandboxConfig(
                    db_path=work / "sandbox.sqlite", port=0, vendors=(vendor,), rate_limits="off"
                )
            ).start()
            config = tap_config(sandbox, pii_default_mode="keep",
                                hubspot_search_requests_per_second=1000)  # fmt: skip
            catalog = discover(work / "discover", config)
            clean = run_tap(work / "clean", config, catalog=catalog)
            assert clean.returncode == 0, clean.stderr[-3000:]
            made[vendor] = (sandbox, config, catalog, _keyed(clean))
        return made[vendor]

    yield get
    for sandbox, *_ in made.values():
        sandbox.stop()


CASES = [(vendor, variant) for vendor in VENDORS for variant in MALFORMED]


@pytest.mark.parametrize(("vendor", "variant"), CASES)
def test_a_malformed_response_is_healed_or_stops_its_crm_cleanly_and_loses_nothing(
    world: Callable[[str], World], tmp_path: Path, vendor: str, variant: str
) -> None:
    sandbox, config, catalog, clean = world(vendor)
    admin = sandbox.urls["admin"] + "/_sandbox/faults"
    httpx.delete(admin).raise_for_status()
    # Given the CRM's third call answered with a spoiled response, once
    fault = {"kind": "malformed", "variant": variant, "vendor": vendor, "calls": [3]}
    httpx.post(admin, json=fault).raise_for_status()
    # when the tap syncs
    run = run_tap(tmp_path / "faulty", config, catalog=catalog)
    fired = httpx.get(admin).json()["faults"][0]["fired"]
    httpx.delete(admin).raise_for_status()
    assert fired == 1
    # then there is no traceback, and every record it emitted is a true one
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    got = _keyed(run)
    for stream, records in got.items():
        for key, rec in records.items():
            assert clean.get(stream, {}).get(key) == rec, f"{stream} {key}: not the CRM's record"
    if run.returncode == 0:
        # and either the retry healed it: every record of a clean sync
        assert got == clean
        return
    # or it stopped, exit 1 with one line naming the CRM
    assert run.returncode == 1, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert f"tap-crm: {vendor}" in last, last
    # and a rerun from its STATE, the CRM well again, completes the sync
    rerun = run_tap(tmp_path / "rerun", config, catalog=catalog, state=run.last_state)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _keyed(rerun)
    for stream, records in clean.items():
        assert got.get(stream, {}) | after.get(stream, {}) == records, stream
