"""target-health's commands (target_health.cli) take the target's settings as the target does:
a JSON file (``--config``), or the TARGET_HEALTH_* environment variables a Meltano plugin
command is given; and a user's mistake is one line and exit 2, an unusable store one line and
exit 1, never a traceback and never a new empty store reported as a success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from tapkit import PG_URL, postgres_answers

from target_health import store as health_store
from target_health.cli import command_argv
from target_health.store import open_store
from target_health.writeback import plan as wb


def _cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_HEALTH_")}
    return subprocess.run(
        [sys.executable, "-m", "target_health.target", *args],
        cwd=cwd, env=clean | (env or {}), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1, done.stderr[-2000:]
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'health.sqlite'}"
    store = open_store(url)
    wb.ensure_tables(store)
    store.close()
    return url


def test_given_no_settings_then_a_command_names_the_missing_store_and_makes_none(
    tmp_path: Path,
) -> None:
    # Given a directory with no store, and no --config nor TARGET_HEALTH_* variable
    for command in ("runs", "plan", "backtest", "approve"):
        args = [command, "abc123"] if command == "approve" else [command]
        # when a command runs, then it says where it looked and how to give the settings
        done = _cli(tmp_path, *args)
        _one_line(done, 2, "no store at output/health.sqlite", "the default database_url",
                  f"meltano invoke target-health:{command}")  # fmt: skip
        # and it made no store to report on
        assert not (tmp_path / "output").exists()


def test_given_settings_in_the_environment_then_commands_use_them(
    tmp_path: Path, store_url: str
) -> None:
    # Given the store's URL as Meltano hands a plugin command its settings
    env = {"TARGET_HEALTH_DATABASE_URL": store_url}
    # when the plans are listed, then they are the (empty) list of that store
    done = _cli(tmp_path, "runs", "--json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"plans": []}
    # and singer-sdk's spelling, --config ENV, reads the same variables
    assert json.loads(_cli(tmp_path, "runs", "--config", "ENV", "--json", env=env).stdout) == {
        "plans": []
    }
    # and an object setting that is not JSON is one line naming the variable
    bad = env | {"TARGET_HEALTH_WRITEBACK": "{enabled: yes"}
    _one_line(_cli(tmp_path, "plan", env=bad), 2, "TARGET_HEALTH_WRITEBACK: not JSON")
    bad = env | {"TARGET_HEALTH_BATCH_SIZE": "many"}
    _one_line(_cli(tmp_path, "runs", env=bad), 2, "TARGET_HEALTH_BATCH_SIZE: not a number")


def test_given_meltanos_config_before_the_command_then_the_command_runs(
    tmp_path: Path, store_url: str
) -> None:
    # Given a config file, as `meltano invoke target-health runs` passes it: before the command
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"database_url": store_url}))
    for args in (["--config", str(config), "runs", "--json"],
                 [f"--config={config}", "runs", "--json"]):  # fmt: skip
        done = _cli(tmp_path, *args)
        assert done.returncode == 0 and json.loads(done.stdout) == {"plans": []}, done.stderr
    # and arguments that name no command stay the Singer target's
    assert command_argv(["--config", str(config)]) is None
    assert command_argv(["--about"]) is None


def test_given_an_unusable_store_or_unknown_plan_then_one_line_and_no_secret(
    tmp_path: Path, store_url: str
) -> None:
    # Given a PostgreSQL store that does not answer, its URL holding a password
    env = {"TARGET_HEALTH_DATABASE_URL": "postgresql://health:s3cr3t-pw@127.0.0.1:1/health"}
    # when a command runs, then it fails (exit 1) on one line without the password
    line = _one_line(_cli(tmp_path, "runs", env=env), 1, "cannot use the store at database_url")
    assert "s3cr3t-pw" not in line
    # and so are the user's mistakes, each exit 2: no CRM credentials for a command that
    # writes, a plan id the store does not know, a rollback of nothing named
    env = {"TARGET_HEALTH_DATABASE_URL": store_url}
    _one_line(_cli(tmp_path, "approve", "nope", env=env), 2, "no CRM credentials configured")
    env |= {"TARGET_HEALTH_HUBSPOT_ACCESS_TOKEN": "pat-x",
            "TARGET_HEALTH_HUBSPOT_BASE_URL": "http://127.0.0.1:1"}  # fmt: skip
    _one_line(_cli(tmp_path, "approve", "nope", env=env), 2, "nope")
    _one_line(_cli(tmp_path, "rollback", env=env), 2, "plan id or --model-version")


def test_show_lists_a_plans_changes_field_by_field_as_a_table_csv_or_json(
    tmp_path: Path, store_url: str
) -> None:
    # Given a saved plan of three changes on two accounts, one of them named in the store
    store = open_store(store_url)
    store.query(
        "INSERT INTO records (entity, key, crm, deleted, data) VALUES ({p}, {p}, {p}, 0, {p})",
        ("account", "acct-1", "hubspot", json.dumps({"name": "Acme Corp"})),
    )
    plan = wb.Plan("p-show-1", "2026-12-01", "health-v1", items=[
        wb.Item("hubspot", "101", "health_score", "acct-1", 71.0, 42.5),
        wb.Item("hubspot", "101", "health_band", "acct-1", "healthy", "at_risk"),
        wb.Item("salesforce", "001X", "health_band", "acct-2", None, "critical"),
    ])  # fmt: skip
    wb.save(store, plan)
    store.close()
    env = {"TARGET_HEALTH_DATABASE_URL": store_url}
    # when `show` prints it as a table
    done = _cli(tmp_path, "show", "p-show-1", env=env)
    assert done.returncode == 0, done.stderr
    head, columns, *rows = done.stdout.splitlines()
    # then it says what the plan is, and each change: where, which account, before -> after
    assert head.startswith("plan p-show-1: apply, planned, as of 2026-12-01, model health-v1")
    assert "3 change(s) on 2 record(s)" in head
    assert columns.split() == ["crm", "record", "account", "field", "before", "after", "state"]
    assert rows[0].split() == ["hubspot", "101", "Acme", "Corp", "health_band", "healthy",
                               "at_risk", "pending"]  # fmt: skip
    assert rows[1].split() == ["hubspot", "101", "Acme", "Corp", "health_score", "71", "42.5",
                               "pending"]  # fmt: skip
    assert rows[2].split() == ["salesforce", "001X", "acct-2", "health_band", "critical",
                               "pending"]  # fmt: skip
    # and as CSV (one CRM) and JSON, every value whole
    done = _cli(tmp_path, "show", "p-show-1", "--format", "csv", "--crm", "salesforce", env=env)
    assert done.stdout.splitlines() == [
        "crm,record,account,field,before,after,state",
        "salesforce,001X,acct-2,health_band,,critical,pending",
    ]
    done = _cli(tmp_path, "show", "p-show-1", "--format", "json", env=env)
    shown = json.loads(done.stdout)
    assert shown["status"] == "planned" and len(shown["changes"]) == 3
    assert shown["changes"][1] == {
        "crm": "hubspot", "record": "101", "account": "Acme Corp", "field": "health_score",
        "before": 71.0, "after": 42.5, "state": "pending",
    }  # fmt: skip
    # and a plan the store does not know is one line, exit 2
    _one_line(_cli(tmp_path, "show", "nope", env=env), 2, "no write-back plan 'nope'")


@pytest.mark.skipif(bool(postgres_answers()), reason=postgres_answers() or "PostgreSQL answers")
def test_stores_in_two_schemas_of_one_database_are_apart(tmp_path: Path) -> None:
    # Given two stores in one PostgreSQL database, each in a schema of its own (none exists yet)
    schemas = [f"chs_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    urls = [health_store.store_url({"database_url": PG_URL, "database_schema": s}) for s in schemas]
    try:
        stores = [open_store(url) for url in urls]
        # then each made its schema and its tables in it
        with psycopg.connect(PG_URL) as conn:
            made = conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'records'"
            ).fetchall()
        assert {s for (s,) in made} >= set(schemas)
        # and a run holding one store does not hold the other
        held = stores[0].try_lock("writeback", "run A")
        assert held is not None
        other = stores[1].try_lock("writeback", "run B")
        assert other is not None
        assert stores[0].try_lock("writeback", "run C") is None
        held(), other()
        # and a command given the schema as a setting reports on that store
        env = {"TARGET_HEALTH_DATABASE_URL": PG_URL, "TARGET_HEALTH_DATABASE_SCHEMA": schemas[1]}
        done = _cli(tmp_path, "runs", "--json", env=env)
        assert done.returncode == 0 and json.loads(done.stdout) == {"plans": []}, done.stderr
        for store in stores:
            store.close()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
