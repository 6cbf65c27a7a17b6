"""A user's mistake, whichever plugin and command it reaches, is one line on stderr that names
what is wrong and an exit code of 2 (exits.USAGE): no traceback, no multi-line report, never
the value of a setting (it may be a secret), and nothing sent to a CRM. Each case below is one
a data engineer makes while setting up tap-crm or target-health by hand or under Meltano.

The CRM settings point at a port nothing listens on: a case that reached the network would
retry for a minute and fail with exit 1, not 2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tapkit import PG_URL, postgres_answers

NOWHERE = "http://127.0.0.1:1"
TAP = {"hubspot_access_token": "pat-na1-canary-0b5e", "hubspot_base_url": NOWHERE}
TARGET: dict[str, Any] = {}  # the target's defaults: a SQLite store under output/

#: The prefix the SDK's log format puts before a message ("2026-... | ERROR | tap_crm | ").
_LOG_PREFIX = re.compile(r"^.*?\|\s*(ERROR|WARNING|CRITICAL)\s*\|\s*[\w.-]+\s*\|\s*")
#: A log line that reports no problem (the SDK's banner: name and version).
_INFO = re.compile(r"\|\s*(INFO|DEBUG)\s*\|")


def _run(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRM_PII_", "TAP_CRM_", "TARGET_HEALTH_"))
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=clean, capture_output=True, text=True, timeout=120, check=False,
        input="",
    )  # fmt: skip


def _write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _tap(config: Any, *extra: str) -> Callable[[Path], list[str]]:
    def args(d: Path) -> list[str]:
        return ["--config", _write(d / "tap.json", config), *extra]

    return args


def _target(config: Any, *extra: str) -> Callable[[Path], list[str]]:
    def args(d: Path) -> list[str]:
        return ["--config", _write(d / "target.json", config), *extra]

    return args


def _command(*words: str, config: Any = None) -> Callable[[Path], list[str]]:
    def args(d: Path) -> list[str]:
        given = ["--config", _write(d / "target.json", config)] if config is not None else []
        return [*words, *given]

    return args


def _store(d: Path) -> str:
    """A real, empty store in ``d`` for the commands that need one."""
    from target_health.store import open_store
    from target_health.writeback import plan as wb

    url = f"sqlite:///{d / 'health.sqlite'}"
    store = open_store(url)
    wb.ensure_tables(store)
    store.close()
    return url


def _newer_store(d: Path) -> list[str]:
    """A store a later target-health made (its version beyond this one's)."""
    url = _store(d)
    from target_health.store import open_store

    store = open_store(url)
    store.query("UPDATE store_meta SET value = '99' WHERE name = 'version'")
    store.close()
    return ["--config", _write(d / "target.json", {"database_url": url})]


def _with_store(*words: str, settings: Any = None) -> Callable[[Path], list[str]]:
    def args(d: Path) -> list[str]:
        config = {"database_url": _store(d)} | (settings or {})
        return [*words, "--config", _write(d / "target.json", config)]

    return args


TAP_MODULE, TARGET_MODULE = "tap_crm.tap", "target_health.target"

#: (plugin module, its arguments in a work directory, words the one line must hold)
CASES: dict[str, tuple[str, Callable[[Path], list[str]], tuple[str, ...]]] = {
    # -- tap-crm ---------------------------------------------------------------------------
    "tap: config file missing": (
        TAP_MODULE, lambda d: ["--config", str(d / "nope.json")], ("--config", "nope.json")),
    "tap: config not JSON": (TAP_MODULE, _tap("hubspot_access_token=x"), ("--config", "JSON")),
    "tap: config a JSON list": (TAP_MODULE, _tap([TAP]), ("--config", "JSON object")),
    "tap: no CRM credentials": (TAP_MODULE, _tap({}), ("credentials",)),
    "tap: token a number": (
        TAP_MODULE, _tap(TAP | {"hubspot_access_token": 12345}),
        ("hubspot_access_token", "must be a text")),
    "tap: token a number, discovering": (
        TAP_MODULE, _tap(TAP | {"hubspot_access_token": 12345}, "--discover"),
        ("hubspot_access_token", "must be a text")),
    "tap: pii_keys a mapping": (
        TAP_MODULE, _tap(TAP | {"pii_keys": {"k1": "c2VjcmV0LWtleS1ieXRlcw=="}}),
        ("pii_keys", "must be a text")),
    "tap: start_date not a time": (
        TAP_MODULE, _tap(TAP | {"start_date": "last tuesday"}), ("start_date", "ISO 8601")),
    "tap: unknown CRM": (TAP_MODULE, _tap(TAP | {"crms": ["zoho"]}), ("crms[0]", "one of")),
    "tap: crms a text": (TAP_MODULE, _tap(TAP | {"crms": "hubspot"}), ("crms", "a list")),
    "tap: salesforce_objects a text": (
        TAP_MODULE, _tap(TAP | {"salesforce_objects": "Account"}),
        ("salesforce_objects", "a list")),
    "tap: field mapping a list": (
        TAP_MODULE, _tap(TAP | {"hubspot_field_mapping": ["nps"]}),
        ("hubspot_field_mapping", "an object")),
    "tap: pii_default_mode unknown": (
        TAP_MODULE, _tap(TAP | {"pii_default_mode": "scramble"}), ("pii_default_mode",)),
    "tap: catalog file missing": (
        TAP_MODULE, _tap(TAP, "--catalog", "/nonexistent/catalog.json"), ("--catalog",)),
    "tap: unknown option": (TAP_MODULE, _tap(TAP, "--discovr"), ("no option --discovr",)),
    "tap: state not JSON": (
        TAP_MODULE,
        lambda d: [*_tap(TAP)(d), "--state", _write(d / "state.json", "{bookmarks")],
        ("--state", "JSON")),
    # -- target-health, as a Singer target ---------------------------------------------------
    "target: config file missing": (
        TARGET_MODULE, lambda d: ["--config", str(d / "nope.json")], ("--config", "nope.json")),
    "target: unknown option": (TARGET_MODULE, _target(TARGET, "--state"), ("no option --state",)),
    "target: unsupported database_url": (
        TARGET_MODULE, _target({"database_url": "mysql://db/health"}), ("database_url",)),
    "target: max_invalid_share not a number": (
        TARGET_MODULE, _target({"max_invalid_share": "abc"}),
        ("max_invalid_share", "must be a number")),
    "target: database_schema for SQLite": (
        TARGET_MODULE, _target({"database_schema": "health"}), ("database_schema", "PostgreSQL")),
    "command: database_schema not a name": (
        TARGET_MODULE,
        _command("runs", config={"database_url": "postgresql://h@127.0.0.1:1/db",
                                 "database_schema": "Health; DROP"}),
        ("database_schema must be a PostgreSQL name",)),
    "target: store from a newer target-health": (
        TARGET_MODULE, _newer_store, ("version 99", "upgrade target-health")),
    "command: store from a newer target-health": (
        TARGET_MODULE, lambda d: ["runs", *_newer_store(d)], ("version 99",)),
    "target: as_of not a date": (
        TARGET_MODULE, _target({"as_of": "yesterday"}), ("as_of", "date")),
    "target: earliest_time not a date": (
        TARGET_MODULE, _target({"earliest_time": "1 Jan"}), ("earliest_time",)),
    "target: writeback not an object": (
        TARGET_MODULE, _target({"writeback": "on"}), ("writeback", "an object")),
    "target: scoring weights wrong": (
        TARGET_MODULE, _target({"scoring": {"weights": "heavy"}}), ("scoring",)),
    "target: batch_size a text": (
        TARGET_MODULE, _target({"batch_size": "big"}), ("batch_size", "a whole number")),
    # -- target-health's commands ------------------------------------------------------------
    "command: unknown flag": (TARGET_MODULE, _with_store("runs", "--everything"), ("runs",)),
    "command: forget without a contact": (TARGET_MODULE, _with_store("forget"), ("forget",)),
    "command: backtest bad snapshot": (
        TARGET_MODULE, _with_store("backtest", "--snapshot", "soon"), ("--snapshot", "soon")),
    "command: approve an unknown plan": (
        TARGET_MODULE, _with_store("approve", "feedbeef0000", settings=TAP), ("feedbeef0000",)),
    "command: writeback not an object": (
        TARGET_MODULE, _command("plan", config={"writeback": "on"}), ("writeback", "an object")),
    "command: config file missing": (
        TARGET_MODULE, lambda d: ["runs", "--config", str(d / "nope.json")], ("nope.json",)),
    "command: setup without CRM credentials": (
        TARGET_MODULE, _command("setup", config={"database_url": "sqlite:///x.sqlite"}),
        ("credentials",)),
}  # fmt: skip


_NO_PG = postgres_answers()
#: A PostgreSQL that answers and refuses what database_url names: a setting to fix (2). One that
#: does not answer may answer a rerun: exit 1 (tests/test_target_cli.py).
_PG = urlsplit(PG_URL)
_NO_DATABASE = _PG._replace(path="/no_such_database_4f1").geturl()
_NO_ROLE = _PG._replace(netloc=f"no_such_role_4f1:pw@{_PG.hostname}:{_PG.port or 5432}").geturl()
_REFUSED = ("cannot use the store at database_url", "FATAL")
CASES |= {
    "target: store's database missing": (
        TARGET_MODULE, _target({"database_url": _NO_DATABASE}), _REFUSED),
    "command: store's role unknown": (
        TARGET_MODULE, _command("runs", config={"database_url": _NO_ROLE}), _REFUSED),
}  # fmt: skip


def _marks(case: str) -> list[pytest.MarkDecorator]:
    needs_pg = "store's" in case
    return [pytest.mark.skipif(bool(_NO_PG), reason=_NO_PG)] if needs_pg else []


@pytest.mark.parametrize("case", [pytest.param(c, marks=_marks(c)) for c in CASES])
def test_a_users_mistake_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    # Given one mistake in a plugin's settings, files or command line
    module, args, words = CASES[case]
    # when the plugin runs
    done = _run(tmp_path, module, *args(tmp_path))
    # then it exits 2 with one line, no traceback, naming what is wrong
    lines = [
        _LOG_PREFIX.sub("", line)
        for line in done.stderr.strip().splitlines()
        if not _INFO.search(line)
    ]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert all(w in lines[0] for w in words), lines[0]
    # and it never quotes a secret it was given
    assert "canary" not in done.stderr and "c2VjcmV0" not in done.stderr
    # and printed no Singer message
    assert done.stdout == ""


def test_a_number_setting_given_as_its_text_is_read_as_the_number() -> None:
    # Given the settings Meltano passes a number as (its text: the definitions' kind string)
    from crm_connectors.errors import ConfigError
    from crm_connectors.settings import check, read_numbers
    from tap_crm.settings import CONFIG_SCHEMA

    config: dict[str, Any] = {
        "hubspot_search_settle_seconds": "0.5",
        "intercom_search_settle_seconds": " 30 ",
        "salesforce_api_version": "66.0",  # text in the schema: stays text
    }
    # when the plugin reads them, then the numbers are numbers and the text stays text
    read_numbers(config, CONFIG_SCHEMA)
    check(config, CONFIG_SCHEMA)
    assert config == {
        "hubspot_search_settle_seconds": 0.5,
        "intercom_search_settle_seconds": 30.0,
        "salesforce_api_version": "66.0",
    }
    # and a text that is no number is named, without its value
    wrong = {"hubspot_search_settle_seconds": "soon"}
    read_numbers(wrong, CONFIG_SCHEMA)
    with pytest.raises(ConfigError, match=r"must be a number \(got a text\).*settle_seconds"):
        check(wrong, CONFIG_SCHEMA)
