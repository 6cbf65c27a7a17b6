"""Deals in a portal's own pipelines (issue #14): won and lost come from the stage's pipeline
metadata, never from the default pipeline's stage ids.

A real portal adds pipelines (renewals, expansions) whose stage ids are numbers. HubSpot
calculates ``hs_is_closed_won`` and ``hs_is_closed`` on every deal from its stage's ``probability``
and ``isClosed``; the mapping reads those, so a renewal won in a custom pipeline counts as won.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from tapkit import run_tap, tap_config

from crm_connectors.hubspot.canonical import MAPPING
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]


def test_given_deals_in_a_custom_pipeline_then_won_and_lost_follow_its_stages(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given a portal with a renewals pipeline of its own
    sandbox = make_sandbox(vendors=("hubspot",), size=5)
    api = httpx.Client(
        base_url=sandbox.urls["hubspot"], headers={"Authorization": f"Bearer {TOKEN}"}
    )
    made = api.post("/crm/v3/pipelines/deals", json={"label": "Renewals", "displayOrder": 1,
        "stages": [
            {"label": "Up for renewal", "displayOrder": 0, "metadata": {"probability": "0.6"}},
            {"label": "Renewed", "displayOrder": 1, "metadata": {"probability": "1.0"}},
            {"label": "Churned", "displayOrder": 2,
             "metadata": {"probability": "0.0", "isClosed": "true"}},
        ]})  # fmt: skip
    assert made.status_code == 201, made.text
    pipe = made.json()
    # and one renewal deal in each of its stages
    want: dict[str, str] = {}
    for stage, outcome in zip(pipe["stages"], ("open", "won", "lost"), strict=True):
        deal = api.post("/crm/v3/objects/deals", json={"properties": {
            "dealname": f"Renewal {stage['label']}", "pipeline": pipe["id"],
            "dealstage": stage["id"], "dealtype": "existingbusiness", "amount": "1200",
            "closedate": "2026-06-30T00:00:00Z"}})  # fmt: skip
        assert deal.status_code == 201, deal.text
        want[deal.json()["id"]] = outcome
    # when the tap reads the deals and the mapping turns them into canonical deals
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    mapped = {
        row.data["key"].rsplit(":", 1)[1]: row.data["stage"]
        for record in run.records["hubspot_deals"]
        for row in MAPPING["hubspot_deals"]({}, record)
    }
    # then each is open, won or lost as its stage says
    assert {rid: mapped[rid] for rid in want} == want
    # and the seeded deals in the default pipeline keep their outcomes
    seeded = [r for r in run.records["hubspot_deals"] if r["id"] not in want]
    assert seeded and all(
        MAPPING["hubspot_deals"]({}, r)[0].data["stage"]
        == {"closedwon": "won", "closedlost": "lost"}.get(r["dealstage"], "open")
        for r in seeded
    )
