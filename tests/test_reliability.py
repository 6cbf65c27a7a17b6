"""The reliability suite's short form (tests/reliability.py; the long form, whose figures are in
tests/RELIABILITY.md: `python3 dev.py reliability`).

Given one seeded world copied for each trial, then:
- `meltano run tap-crm target-health` through about 30% mixed faults on the four CRMs leaves the
  store and every CRM record as a fault-free run does;
- kill -9 of the tap, the target, apply, rollback and the follow-ups, then a rerun, ends as an
  uninterrupted run: the same store, nothing left to write, fields back to their before-values,
  one follow-up per record;
- two and four runs at once on one SQLite and one PostgreSQL store send each write once and
  make each follow-up once, the others waiting or stopping with the lock message;
- no canary (credential, key, issued token, a person's e-mail, name or phone) reaches Meltano's
  debug log, the store or forget's output, and forget leaves no token of its subject;
- and the fingerprints the scenarios compare do tell a changed row or record from an equal one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import reliability as rel

from target_health.store import open_store


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rel.Worlds]:
    yield rel.Worlds(tmp_path_factory.mktemp("worlds"))


def _passed(result: rel.Result) -> rel.Result:
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.ok, "\n".join(result.failures)
    assert result.trials > 0
    return result


@pytest.mark.timeout(1200)
def test_meltano_run_through_20_percent_faults_ends_as_a_fault_free_run(
    worlds: rel.Worlds, tmp_path: Path
) -> None:
    result = _passed(rel.faults(worlds, tmp_path, trials=1, size=20))
    low = float(str(result.figures["fault share"]).split("-")[0].rstrip("%")) / 100
    assert low >= 0.20, result.figures
    assert set(result.figures["faults fired"]) >= {
        "rate_limit", "server_error", "drop", "truncate", "expired_token"
    }  # fmt: skip


@pytest.mark.timeout(900)
def test_kill_9_anywhere_then_a_rerun_ends_as_an_uninterrupted_run(
    worlds: rel.Worlds, tmp_path: Path
) -> None:
    result = _passed(rel.crashes(worlds, tmp_path, 2, 3, random.Random(5)))
    assert result.figures["write-back kills"] == {"apply": 1, "rollback": 1, "programs": 1}


@pytest.mark.timeout(900)
def test_runs_at_once_write_once_and_the_others_wait_or_stop_on_the_lock(
    worlds: rel.Worlds, tmp_path: Path
) -> None:
    result = _passed(rel.concurrency(worlds, tmp_path, 4))
    assert result.figures["follow-ups"] > 0 and result.figures["write calls"] > 0
    # the trials without a wait saw the lock stop the others
    assert result.figures.get("runs stopped by the lock", 0) > 0, result.figures


@pytest.mark.timeout(900)
def test_no_canary_in_meltanos_debug_log_the_store_or_forgets_output(
    worlds: rel.Worlds, tmp_path: Path
) -> None:
    result = _passed(rel.pii(worlds, tmp_path))
    assert result.figures["canaries"] > 50


def test_the_fingerprints_tell_a_changed_row_from_an_equal_one(tmp_path: Path) -> None:
    # Given two stores holding the same record, and a third where it differs
    urls = [f"sqlite:///{tmp_path / f'{n}.sqlite'}" for n in "abc"]
    for url, name in zip(urls, ("Acme", "Acme", "Acme Ltd"), strict=True):
        store = open_store(url)
        with store.transaction() as tx:
            tx.execute(
                store.sql(
                    "INSERT INTO records (entity, key, crm, deleted, data)"
                    " VALUES ('account', 'hubspot:companies:1', 'hubspot', 0, {p})"
                ),
                (f'{{"name": "{name}"}}',),
            )
    a, b, c = (rel.store_print(url) for url in urls)
    # then equal stores compare equal, and the changed one is named by its table
    assert rel.store_diff(a, b) == ""
    assert rel.store_diff(a, c).startswith("store table records: 1 row(s) only in the clean run")
    # and CRM records differing in one field are named with that field
    assert rel.diff_prints({"x": {"f": 1, "g": 2}}, {"x": {"f": 1, "g": 2}}, "CRM") == ""
    assert "fields ['g']" in rel.diff_prints(
        {"x": {"f": 1, "g": 2}}, {"x": {"f": 1, "g": 3}}, "CRM"
    )


def test_the_long_form_writes_its_figures_with_the_date_and_machine() -> None:
    ok = rel.Result("crashes", trials=50, figures={"kills": {"apply": 10}})
    bad = rel.Result("faults", trials=10, failures=["trial 3: exit 1"])
    page = rel.render([ok, bad], "long", 600)
    assert page.startswith("# Reliability figures")
    assert "CPUs, Python" in page and "UTC" in page
    assert '| crashes | 50 | pass | kills: {"apply": 10} |' in page
    assert "| faults | 10 | **1 failed** |" in page and "- faults: trial 3: exit 1" in page
