"""target-health's ingest: tap-crm's real output into the canonical store.

Given the Singer output of tap-crm over a seeded sandbox (all three CRMs), when target-health
reads it as a process, then every record lands once in the canonical model, a replay leaves the
store identical, bad records are quarantined with a pointer and a reason (never a value) while
the run goes on, and SQLite and PostgreSQL hold the same rows.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from tapkit import PG_URL, run_tap, run_target, tap_config

from crm_connectors.sandbox.world import WorldSpec, generate
from target_health import compute as compute_module
from target_health import store as store_module
from target_health.assemble import AssemblyStats, account_facts
from target_health.compute import compute
from target_health.scoring import nps_report, parse_settings, retention_report, score_account
from target_health.store import open_store

WORLD = WorldSpec(size=60, seed=5)


@pytest.fixture(scope="module")
def tap_output(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """tap-crm's messages over a 60-account sandbox of every CRM (one sync per module)."""
    from crm_connectors.sandbox.app import Sandbox, SandboxConfig
    from crm_connectors.sandbox.seed import seed

    workdir = tmp_path_factory.mktemp("target-input")
    db = workdir / "sandbox.sqlite"
    seed(db, WORLD)
    sandbox = Sandbox(SandboxConfig(db_path=db, port=0, rate_limits="off")).start()
    try:
        run = run_tap(workdir, tap_config(sandbox, hubspot_search_requests_per_second=1000))
        assert run.returncode == 0, run.stderr[-3000:]
        yield run.messages
    finally:
        sandbox.stop()


#: A retention under which no deleted contact of the seeded world is purged yet.
KEEP_DELETED = 36500


EXPECTED_ENTITIES = {
    "account": (
        "hubspot_companies",
        "salesforce_Account",
        "intercom_companies",
        "zendesk_organizations",
    ),
    "contact": ("hubspot_contacts", "salesforce_Contact", "intercom_contacts", "zendesk_users"),
    "deal": ("hubspot_deals", "salesforce_Opportunity"),
    "ticket": ("hubspot_tickets", "salesforce_Case", "zendesk_tickets"),
    "conversation": ("intercom_conversations",),
    "nps_response": ("hubspot_feedback_submissions", "salesforce_NPS_Response__c"),
}


def test_every_record_lands_once_and_state_is_forwarded(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # When target-health reads tap-crm's output (keeping contacts deleted long ago: this test
    # counts rows; their purge is tests/test_erasure.py's)
    done = run_target(tmp_path, tap_output, deleted_contact_retention_days=KEEP_DELETED)
    # then the run succeeds and says what it did
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 quarantined" in done.stderr
    # and each canonical entity holds one row per record of its streams (NPS: surveys of that type)
    received = Counter(m["stream"] for m in tap_output if m["type"] == "RECORD")
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    stored = Counter(
        entity for entity, _ in store.query("SELECT entity, key FROM records ORDER BY 1, 2")
    )
    for entity, streams in EXPECTED_ENTITIES.items():
        assert stored[entity] == sum(received[s] for s in streams), entity
    # and the records the CRMs archived, deleted or merged away are flagged, not dropped
    flagged = sum(
        1
        for m in tap_output
        if m["type"] == "RECORD"
        and m["record"].get("_sdc_deleted_at")
        and any(m["stream"] in streams for streams in EXPECTED_ENTITIES.values())
    )
    assert flagged > 0
    assert store.query("SELECT COUNT(*) FROM records WHERE deleted = 1") == [(flagged,)]
    # and the HubSpot associations became parents of deals and tickets
    parents = store.query("SELECT child FROM parents")
    assert parents and all(p[0].startswith("hubspot:") for p in parents)
    # and the tap's last STATE comes out once everything before it is stored
    last_state = [m["value"] for m in tap_output if m["type"] == "STATE"][-1]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == last_state
    runs = store.query("SELECT status, counts FROM runs")
    assert runs[0][0] == "succeeded" and json.loads(runs[0][1])["received"] == sum(
        received.values()
    )


@pytest.mark.timeout(120)  # without the STATE, the read below waits for ever
def test_a_full_batch_stores_every_stream_and_forwards_the_state_before_the_input_ends(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given batches of 3, and input that is still coming: a contact, a STATE, then 3 companies
    def first(kind: str, stream: str, n: int = 1) -> list[dict[str, Any]]:
        return [m for m in tap_output if m["type"] == kind and m["stream"] == stream][:n]

    url = f"sqlite:///{tmp_path / 'health.sqlite'}"
    (tmp_path / "config.json").write_text(
        json.dumps({"database_url": url, "as_of": str(WORLD.anchor.date()), "batch_size": 3})
    )
    state = {"bookmarks": {"hubspot_contacts": {"replication_key_value": "x"}}}
    head = [
        *first("SCHEMA", "hubspot_companies"),
        *first("SCHEMA", "hubspot_contacts"),
        *first("RECORD", "hubspot_contacts"),
        {"type": "STATE", "value": state},
        *first("RECORD", "hubspot_companies", 3),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "target_health.target", "--config", str(tmp_path / "config.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in head))
        proc.stdin.flush()
        # when the companies' batch is full, then the STATE comes out with the input still open
        line = proc.stdout.readline()  # the target's first output line
        assert json.loads(line) == state  # as singer-sdk forwards it: the value
        # and both streams' records before it are stored: the contact's batch was not full
        stored = Counter(e for (e,) in open_store(url).query("SELECT entity FROM records"))
        assert stored == {"account": 3, "contact": 1}
    finally:
        proc.stdin.close()
        proc.wait(timeout=300)
    assert proc.returncode == 0


def test_replaying_the_same_input_leaves_the_store_identical(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given a store after one run
    assert run_target(tmp_path, tap_output).returncode == 0
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    before = store.snapshot()
    # when the same messages are delivered again (Singer is at-least-once)
    assert run_target(tmp_path, tap_output).returncode == 0
    # then nothing changed but the run log
    assert store.snapshot() == before
    assert len(store.query("SELECT run_id FROM runs")) == 2


def test_an_older_version_arriving_late_does_not_overwrite_a_newer_one(tmp_path: Path) -> None:
    schema = {
        "type": "SCHEMA",
        "stream": "salesforce_Account",
        "key_properties": ["Id"],
        "schema": {"type": "object", "properties": {"Id": {"type": "string"}}},
    }

    def account(name: str, stamp: str) -> dict[str, Any]:
        record = {"Id": "001A", "Name": name, "SystemModstamp": stamp, "_sdc_deleted_at": None}
        return {"type": "RECORD", "stream": "salesforce_Account", "record": record}

    # Given the newer version first, then the older one
    messages = [schema, account("New", "2026-02-01T00:00:00.000Z")]
    messages.append(account("Old", "2026-01-01T00:00:00.000Z"))
    assert run_target(tmp_path, messages).returncode == 0
    # then the newer stays
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    (data,) = store.query("SELECT data FROM records WHERE key = 'salesforce:Account:001A'")
    assert json.loads(data[0])["name"] == "New"


def _corrupt(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """The messages with a few bad records: a wrong type, a missing key, an out-of-range NPS."""
    out = copy.deepcopy(messages)
    bad: set[tuple[str, str]] = set()
    for m in out:
        if m["type"] != "RECORD":
            continue
        rec = m["record"]
        if m["stream"] == "hubspot_deals" and ("hubspot_deals", "type") not in bad:
            rec["amount"] = "lots of money from alice@example.com"
            bad.add(("hubspot_deals", "type"))
        elif m["stream"] == "salesforce_Contact" and ("salesforce_Contact", "key") not in bad:
            rec["Id"] = None
            bad.add(("salesforce_Contact", "key"))
        elif m["stream"] == "salesforce_NPS_Response__c" and ("nps", "range") not in bad:
            rec["Score__c"] = 42.0
            bad.add(("nps", "range"))
    assert len(bad) == 3, bad
    return out, bad


def test_bad_records_are_quarantined_without_values_and_the_run_goes_on(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given tap output with three bad records
    messages, _ = _corrupt(tap_output)
    received = sum(1 for m in messages if m["type"] == "RECORD")
    # when target-health reads it with a threshold they stay under
    done = run_target(
        tmp_path, messages, max_invalid_share=0.05, deleted_contact_retention_days=KEEP_DELETED
    )
    # then the run succeeds, the three are quarantined with where and why
    assert done.returncode == 0, done.stderr[-3000:]
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    rows = store.query("SELECT stream, record_key, pointer, reason FROM quarantine ORDER BY 1")
    assert {r[0] for r in rows} == {
        "hubspot_deals",
        "salesforce_Contact",
        "salesforce_NPS_Response__c",
    }
    by_stream = {r[0]: r for r in rows}
    assert by_stream["hubspot_deals"][2] == "/amount"
    assert by_stream["hubspot_deals"][3].startswith("type: expected")
    assert by_stream["salesforce_Contact"][2] == "/Id"
    assert by_stream["salesforce_NPS_Response__c"][2] == "/nps_response/score"
    assert by_stream["salesforce_NPS_Response__c"][3] == "maximum: expected 10"
    # and no value of a bad record is stored or logged
    assert "alice@example.com" not in json.dumps(store.snapshot())
    assert "alice@example.com" not in done.stderr
    # and every other record is stored, and the run's counts say so
    (counts,) = store.query("SELECT counts FROM runs")
    summary = json.loads(counts[0])
    assert summary["received"] == received and summary["quarantined"] == 3
    streams = (*EXPECTED_ENTITIES["deal"], *EXPECTED_ENTITIES["contact"])
    sent = sum(1 for m in messages if m["type"] == "RECORD" and m["stream"] in streams)
    good = store.query("SELECT COUNT(*) FROM records WHERE entity IN ('deal', 'contact')")
    assert good[0][0] == sent - 2  # the bad deal and the contact without a key
    # and the bad NPS answer reaches no score: every stored response is within 0..10, and the
    # measured NPS counts exactly the stored ones in its window
    nps_rows = store.query("SELECT data FROM records WHERE entity = 'nps_response'")
    sent_nps = sum(1 for m in messages if m["type"] == "RECORD" and "NPS" in m["stream"])
    sent_nps += sum(1 for m in messages if m["type"] == "RECORD" and "feedback" in m["stream"])
    assert len(nps_rows) == sent_nps - 1
    assert all(0 <= json.loads(r[0])["score"] <= 10 for r in nps_rows)
    counted = sum(r[0] for r in store.query("SELECT nps_responses FROM scores"))
    (overall,) = store.query("SELECT value FROM metrics WHERE name = 'nps'")
    assert json.loads(overall[0])["responses"] == counted


def test_too_many_invalid_records_fail_the_run_after_storing_the_valid_ones(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given three bad records and a threshold of zero
    messages, _ = _corrupt(tap_output)
    # when target-health reads them
    done = run_target(tmp_path, messages, max_invalid_share=0)
    # then it fails with a one-line reason naming the setting, and records the failed run
    assert done.returncode == 1
    assert "max_invalid_share" in done.stderr and "Traceback" not in done.stderr
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    assert store.query("SELECT status FROM runs") == [("failed",)]
    assert len(store.query("SELECT 1 FROM quarantine")) == 3


def _postgres_url() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return PG_URL
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(exc).__name__})")


def test_sqlite_and_postgresql_hold_the_same_rows(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    url = _postgres_url()
    import psycopg

    schema = f"th_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{url}?options=-csearch_path%3D{schema}"
    try:
        # Given the same input with one bad record, into SQLite and into PostgreSQL
        messages, _ = _corrupt(tap_output)
        assert run_target(tmp_path / "lite", messages, max_invalid_share=1).returncode == 0
        done = run_target(tmp_path / "pg", messages, max_invalid_share=1, database_url=pg_url)
        assert done.returncode == 0, done.stderr[-3000:]
        # then both stores hold exactly the same rows
        lite = open_store(f"sqlite:///{tmp_path / 'lite' / 'health.sqlite'}").snapshot()
        pg = open_store(pg_url).snapshot()
        assert lite == pg
        assert len(lite["records"]) > 100
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_target_about_lists_its_settings() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "target_health.target", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in ("database_url", "max_invalid_share", "batch_size"):
        assert name in done.stdout


def test_the_store_url_is_a_secret_whose_password_is_masked_in_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from crm_connectors.pii import redact_in_logs
    from target_health.target import CONFIG_SCHEMA, _secret_part

    # Given database_url, which for PostgreSQL may hold a password
    spec = CONFIG_SCHEMA["properties"]["database_url"]
    # then it is a secret setting (sensitive in Meltano, never listed in plain text)
    assert spec.get("secret") is True
    # and of its value only the password is masked in the logs: the rest names the store
    url = "postgresql://health:Canary-Pw-4471@db.internal:5432/health"
    assert _secret_part("database_url", url) == "Canary-Pw-4471"
    assert _secret_part("database_url", "sqlite:///output/health.sqlite") == ""
    assert _secret_part("hubspot_access_token", "pat-x") == "pat-x"
    redact_in_logs([_secret_part("database_url", url)])
    with caplog.at_level(logging.INFO, logger="target_health"):
        logging.getLogger("target_health").info("store at %s", url)
    (line,) = [r.getMessage() for r in caplog.records if "store at" in r.getMessage()]
    assert "Canary-Pw-4471" not in line and "db.internal:5432/health" in line


def _usage_csv(tmp_path: Path, world: dict[str, Any], extra: Sequence[list[str]] = ()) -> Path:
    """The world's product usage as the CSV export target-health reads, plus ``extra`` rows."""
    usage = tmp_path / "usage.csv"
    with usage.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["account_external_id", "month", "active_users", "seats", "logins"])
        for b in world.values():
            out.writerows(
                [u.external_id, u.month, u.active_users, u.seats, u.logins] for u in b.usage
            )
        out.writerows(extra)
    return usage


def test_facts_per_customer_match_the_seeded_world(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given the store filled from the three CRMs and the product usage export (one bad line)
    world = {b.account.external_id: b for b in generate(WORLD)}
    usage = _usage_csv(tmp_path, world, extra=[["", "2026-10-01", "3", "", ""]])  # no account
    done = run_target(tmp_path, tap_output, usage_csv=str(usage))
    assert done.returncode == 0, done.stderr[-3000:]
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    # when facts are assembled per customer
    stats = AssemblyStats()
    facts = {f.account_key: f for f in account_facts(store, stats)}
    # then there is one per customer live in some CRM, linked across CRMs by external id
    live = {
        ext
        for ext, b in world.items()
        if any(b.account.lifecycle.get(crm, "live") == "live" for crm in b.account.crms)
    }
    assert set(facts) == {f"ext:{ext}" for ext in live}
    assert stats.accounts == len(live)
    # and a customer in every CRM without edge cases carries the world's values and records
    plain = [
        b
        for ext, b in world.items()
        if ext in live and b.account.edge is None and not b.account.lifecycle
    ]
    assert plain
    for b in plain:
        f = facts[f"ext:{b.account.external_id}"]
        assert f.arr == pytest.approx(b.account.arr), b.account.external_id
        assert f.seats == b.account.seats
        assert str(f.renewal_date) == b.account.renewal_date
        assert len(f.deals) == len(b.deals), b.account.external_id
        # (an NPS response reaches its account through its contact, in the same CRM)
        contact_crms = {c.key: c.crms for c in b.contacts}
        reachable = [n for n in b.nps if n.crm in contact_crms.get(n.contact_key, ())]
        assert len(f.nps) == len(reachable), b.account.external_id
        assert len(f.tickets) == len(b.tickets), b.account.external_id
        assert [(str(u.month), u.active_users) for u in f.usage] == [
            (u.month, u.active_users) for u in b.usage
        ]
    # and the usage line without an account is quarantined, by line number
    assert store.query("SELECT record_key, pointer FROM quarantine") == [
        ("line " + str(1 + sum(len(b.usage) for b in world.values()) + 1), "/usage/account_ref")
    ]


def test_the_worlds_at_risk_customers_land_in_the_at_risk_bands(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given the pipeline's store (three CRMs and product usage), measured as of the world's now
    world = {b.account.external_id: b for b in generate(WORLD)}
    usage = _usage_csv(tmp_path, world)
    assert run_target(tmp_path, tap_output, usage_csv=str(usage)).returncode == 0
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    bands = {
        key.removeprefix("ext:"): band
        for key, band in store.query("SELECT account_key, band FROM scores")
    }
    # then every customer the world labels at risk is in the at_risk or critical band
    labels = Counter(b.account.label for ext, b in world.items() if ext in bands)
    assert labels["at_risk"] >= 3, labels
    for ext, band in bands.items():
        label = world[ext].account.label
        if label == "at_risk":
            assert band in ("at_risk", "critical"), (ext, band)
        if label == "healthy":
            assert band in ("healthy", "neutral"), (ext, band)
    # and the portfolio figures are stored beside them
    names = {row[0] for row in store.query("SELECT name FROM metrics")}
    assert names == {"nps", "bands", "segments", "retention"}


def test_backtest_reports_how_the_bands_separated_later_churn(
    tap_output: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given snapshots six months apart (the earlier one measured as of then)
    for as_of in ("2026-05-05", "2026-11-01"):
        assert run_target(tmp_path, tap_output, as_of=as_of).returncode == 0
    # when the backtest looks at the earlier snapshot and the 180 days after it
    done = subprocess.run(
        [sys.executable, "-m", "target_health.target", "backtest", "--config",
         str(tmp_path / "config.json"), "--snapshot", "2026-05-05", "--horizon-days", "180",
         "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # then it reports per band precision and recall, and the score's AUC
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["snapshot"] == "2026-05-05" and report["cases"] > 0
    assert report["churned"] >= 1
    assert {b["band"] for b in report["bands"]} <= {"healthy", "neutral", "at_risk", "critical"}
    assert report["bands"][0]["recall_at_or_worse"] == 1.0  # the best band "or worse": all
    assert sum(b["accounts"] for b in report["bands"]) == report["cases"]
    # (the deterministic world of this module: 60 accounts, 4 churn within the horizon; the
    # scores rank them worse than most, though six months ahead they still look healthy)
    assert report["auc"] is not None and report["auc"] > 0.6
    # and with no store, or a store with no scores, it says so (and makes no store)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"database_url": f"sqlite:///{tmp_path / 'none.sqlite'}"}))
    cmd = [sys.executable, "-m", "target_health.target", "backtest", "--config", str(empty)]
    missing = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no store at" in missing.stderr, missing.stderr
    assert "none.sqlite" in missing.stderr and not (tmp_path / "none.sqlite").exists()
    open_store(f"sqlite:///{tmp_path / 'none.sqlite'}").close()
    none = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert none.returncode == 2 and "no scores stored yet" in none.stderr


def test_measuring_a_batch_at_a_time_gives_the_figures_of_all_accounts_at_once(
    tap_output: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store (three CRMs, product usage) measured a month before the world's now
    world = {b.account.external_id: b for b in generate(WORLD)}
    usage = _usage_csv(tmp_path, world)
    done = run_target(tmp_path, tap_output, usage_csv=str(usage), as_of="2026-10-01")
    assert done.returncode == 0, done.stderr[-3000:]
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    # when it is measured as of now in batches of 7 accounts, the earlier snapshots looked up
    # 5 keys at a time
    monkeypatch.setattr(compute_module, "BATCH", 7)
    monkeypatch.setattr(store_module, "_KEYS_PER_QUERY", 5)
    settings, as_of = parse_settings({}), WORLD.anchor.date()
    summary = compute(store, settings, as_of)
    # then each account's score and trend are those of the account scored with its whole
    # history at hand (every account's snapshots read at once)
    facts = list(account_facts(store))
    assert summary.accounts == len(facts) > 2 * 7
    history = store.score_history(settings.health.version, str(as_of))
    expected = {}
    for f in facts:
        snaps = [(dt.date.fromisoformat(d), s) for d, s, _ in history.get(f.account_key, ())]
        h = score_account(f, as_of, settings.health, snaps)
        trend = h.trend.delta_window
        expected[f.account_key] = (
            h.score,
            h.band,
            trend if trend is not None else h.trend.delta_previous,
        )
    stored = store.query(
        "SELECT account_key, score, band, trend FROM scores WHERE as_of = ?", (str(as_of),)
    )
    assert {key: (score, band, trend) for key, score, band, trend in stored} == expected
    assert sum(1 for _, _, trend in expected.values() if trend is not None) > len(facts) // 2
    # and the portfolio's NPS and retention are those of every account's facts at once
    assert summary.nps == asdict(nps_report(facts, as_of, settings.nps_window_days).overall)
    figures = (
        *("version", "grr", "nrr", "logo_retention", "cohort_logos", "start_arr", "end_arr"),
        *("churned_arr", "contraction_arr", "expansion_arr", "new_logos", "reactivated_logos"),
    )
    assert summary.retention == [
        {"period": r.period.label, "start": str(r.period.start), "end": str(r.period.end)}
        | {name: getattr(r, name) for name in figures}
        for r in retention_report(facts, as_of, settings.retention_periods)
    ]
    assert summary.bands == Counter(band or "unscored" for _, band, _ in expected.values())


def _schema(stream: str, key: str = "id", **fields: str) -> dict[str, Any]:
    """A SCHEMA message; ``fields``: role -> the field tap-crm's field mapping marks for it."""
    props = {field: {"x-canonical": role} for role, field in fields.items()}
    return {
        "type": "SCHEMA",
        "stream": stream,
        "key_properties": [key],
        "schema": {"type": "object", "properties": props},
    }


def _record(stream: str, **record: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": {"_sdc_deleted_at": None, **record}}


def test_an_account_known_only_by_a_contacts_email_token_joins_its_customer(
    tmp_path: Path,
) -> None:
    # Given a HubSpot customer with an external id, and an Intercom company with neither
    # external id nor website whose contact has the same keyed e-mail token as HubSpot's contact
    token = "tok:v1:h1:Sh4r3dT0k3nAAAAAAAAAAA"
    messages = [
        _schema("hubspot_companies", external_id="external_account_id", arr="annualrevenue"),
        _record("hubspot_companies", id="1", external_account_id="ACC-9", name="Nine",
                annualrevenue=1200.0, hs_lastmodifieddate="2026-10-01T00:00:00.000Z"),
        _schema("hubspot_contacts"),
        _record("hubspot_contacts", id="11", associatedcompanyid=1, email__token=token),
        _schema("intercom_companies"),
        _record("intercom_companies", id="ic1", name="Nine (support)"),
        _schema("intercom_contacts"),
        _record("intercom_contacts", id="icc1", email__token=token,
                companies={"data": [{"id": "ic1"}]}, last_seen_at="2026-10-20T00:00:00Z"),
        _schema("intercom_conversations"),
        _record("intercom_conversations", id="cv1", created_at="2026-10-15T00:00:00Z",
                state="open", contacts={"contacts": [{"id": "icc1"}]}),
    ]  # fmt: skip
    assert run_target(tmp_path, messages).returncode == 0
    # when facts are assembled
    store = open_store(f"sqlite:///{tmp_path / 'health.sqlite'}")
    facts = list(account_facts(store))
    # then there is one customer, with the Intercom conversation and engagement in it
    assert [f.account_key for f in facts] == ["ext:ACC-9"]
    (customer,) = facts
    assert len(customer.tickets) == 1 and customer.arr == 1200.0
    assert str(customer.last_engagement) == "2026-10-20 00:00:00+00:00"
    # and without the shared token the Intercom company stays a customer of its own
    messages[7]["record"]["email__token"] = "tok:v1:h1:Oth3rT0k3nAAAAAAAAAAAA"
    assert run_target(tmp_path / "apart", messages).returncode == 0
    apart = open_store(f"sqlite:///{tmp_path / 'apart' / 'health.sqlite'}")
    keys = sorted(f.account_key for f in account_facts(apart))
    assert keys == ["ext:ACC-9", "intercom:companies:ic1"]


def test_given_a_line_that_is_not_json_when_reading_then_the_error_names_the_line_not_its_text(
    tmp_path: Path,
) -> None:
    secret = "jane.doe@example.com"
    config = {"database_url": f"sqlite:///{tmp_path / 'health.sqlite'}", "as_of": "2026-11-01"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    schema = {"type": "SCHEMA", "stream": "hubspot_owners", "key_properties": ["id"],
              "schema": {"type": "object", "properties": {"id": {"type": "string"}}}}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "target_health.target", "--config", str(tmp_path / "config.json")],
        input=json.dumps(schema) + "\n" + '{"type": "RECORD", "email": "' + secret + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "target-health: input line 2: not valid JSON" in done.stderr.strip().splitlines()[-1]
    assert secret not in done.stderr + done.stdout
