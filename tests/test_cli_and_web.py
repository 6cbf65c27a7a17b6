"""``crm-sandbox`` as a user runs it (a separate process), state across restarts, the web page."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

HS = {"Authorization": f"Bearer {DEFAULT_CREDENTIALS['hubspot']['private_app_token']}"}
CLI = [sys.executable, "-m", "crm_connectors.sandbox.cli"]


@contextmanager
def serving(db: Path, *extra: str) -> Iterator[dict[str, str]]:
    ready = db.with_suffix(f".ready-{time.time_ns()}.json")
    proc = subprocess.Popen(
        [*CLI, "serve", "--db", str(db), "--port", "0", "--ready-file", str(ready), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        urls = None
        while urls is None:  # the file appears, then is written whole
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sandbox did not start in 30 s"
            try:
                urls = json.loads(ready.read_text())
            except (OSError, ValueError):
                time.sleep(0.05)
        yield urls
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "crm.sqlite"
    done = subprocess.run(
        [*CLI, "seed", "--db", str(db), "--size", "25", "--seed", "4"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(done.stdout)
    assert summary["accounts"] == 25
    assert summary["records"]["hubspot"]["companies"] > 0
    return db


def test_given_seeded_db_when_seeding_again_then_refused_with_a_clear_message(
    seeded_db: Path,
) -> None:
    again = subprocess.run(
        [*CLI, "seed", "--db", str(seeded_db), "--size", "25"], capture_output=True, text=True
    )
    assert again.returncode == 1
    assert "already holds records" in again.stderr


def test_given_out_of_range_size_when_seeding_then_rejected(tmp_path: Path) -> None:
    bad = subprocess.run(
        [*CLI, "seed", "--db", str(tmp_path / "x.sqlite"), "--size", "5"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "between 10 and 1000000" in bad.stderr


def test_given_fault_at_start_and_at_run_time_when_serving_then_both_fire(
    seeded_db: Path,
) -> None:
    with serving(
        seeded_db, "--fault", "kind=server_error,vendor=hubspot,status=502,calls=1"
    ) as urls:
        companies = f"{urls['hubspot']}/crm/v3/objects/companies"
        assert httpx.get(companies, headers=HS).status_code == 502
        assert httpx.get(companies, headers=HS).status_code == 200
        added = subprocess.run(
            [*CLI, "fault", "kind=rate_limit,vendor=hubspot,calls=1", "--url", urls["admin"]],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(added.stdout)["faults"][0]["kind"] == "rate_limit"
        assert httpx.get(companies, headers=HS).status_code == 429
        stats = subprocess.run(
            [*CLI, "stats", "--url", urls["admin"]], capture_output=True, text=True, check=True
        )
        hubspot = json.loads(stats.stdout)["vendors"]["hubspot"]
        assert hubspot["statuses"] == {"502": 1, "200": 1, "429": 1}
        assert hubspot["faults"] == {"server_error": 1, "rate_limit": 1}


def test_given_a_write_when_the_sandbox_restarts_then_reads_see_it(seeded_db: Path) -> None:
    with serving(seeded_db, "--no-rate-limits") as urls:
        first = httpx.get(f"{urls['hubspot']}/crm/v3/objects/companies?limit=1", headers=HS)
        company_id = first.json()["results"][0]["id"]
        patched = httpx.patch(
            f"{urls['hubspot']}/crm/v3/objects/companies/{company_id}",
            json={"properties": {"description": "written before the restart"}},
            headers=HS,
        )
        assert patched.status_code == 200
    with serving(seeded_db, "--no-rate-limits") as urls:
        read = httpx.get(
            f"{urls['hubspot']}/crm/v3/objects/companies/{company_id}?properties=description",
            headers=HS,
        )
        assert read.json()["properties"]["description"] == "written before the restart"
        page = httpx.get(f"{urls['admin']}/ui/hubspot/companies/{company_id}")
        assert page.status_code == 200
        assert "written before the restart" in page.text


def test_given_web_page_when_browsing_then_objects_and_record_fields_show(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox(size=15)
    admin = sandbox.urls["admin"]
    index = httpx.get(f"{admin}/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    for vendor, obj in (
        ("hubspot", "companies"),
        ("salesforce", "Account"),
        ("intercom", "contacts"),
    ):
        assert f"/ui/{vendor}/{obj}'" in index.text
    listing = httpx.get(f"{admin}/ui/salesforce/Account")
    assert listing.status_code == 200
    row = (
        sandbox.store.conn()
        .execute(
            "SELECT id, data FROM records"
            " WHERE vendor = 'salesforce' AND object = 'Account' AND state = 0 LIMIT 1"
        )
        .fetchone()
    )
    assert f"/ui/salesforce/Account/{row[0]}" in listing.text
    record = httpx.get(f"{admin}/ui/salesforce/Account/{row[0]}")
    name = json.loads(row[1])["Name"]
    assert record.status_code == 200
    assert "External_Account_Id__c" in record.text
    assert html.escape(name) in record.text
    assert httpx.get(f"{admin}/ui/salesforce/Account/nope").status_code == 404
