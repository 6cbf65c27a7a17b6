"""The generated customer base: deterministic, realistic in shape, and full of the edge cases."""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from pathlib import Path

import pytest

from crm_connectors.sandbox.emulators import vendors
from crm_connectors.sandbox.seed import exports_dir, seed
from crm_connectors.sandbox.world import WorldSpec, generate


def test_given_same_seed_when_generating_twice_then_identical_worlds() -> None:
    first = list(generate(WorldSpec(size=200, seed=5)))
    assert first == list(generate(WorldSpec(size=200, seed=5)))
    assert first != list(generate(WorldSpec(size=200, seed=6)))


def test_given_ranges_when_generating_separately_then_they_concatenate_to_the_whole() -> None:
    spec = WorldSpec(size=120, seed=9, tie_block=500)
    whole = list(generate(spec))
    assert list(generate(spec, 1, 50)) + list(generate(spec, 50)) == whole
    assert [b.account.key for b in whole] == list(range(1, 121))


def test_given_tie_block_too_big_for_size_when_generating_then_clear_error() -> None:
    with pytest.raises(ValueError, match="needs at least"):
        next(generate(WorldSpec(size=10, seed=1, tie_block=10_050)))


@pytest.fixture(scope="module")
def world() -> list:
    return list(generate(WorldSpec(size=3000, seed=11, tie_block=10_050)))


def test_given_world_when_counting_labels_then_every_label_is_well_represented(world: list) -> None:
    labels = Counter(b.account.label for b in world)
    assert set(labels) == {"healthy", "declining", "at_risk", "churned"}
    assert labels["healthy"] > labels["declining"] > labels["churned"] > 50


def test_given_labels_when_comparing_signals_then_at_risk_looks_worse_than_healthy(
    world: list,
) -> None:
    def mean(label: str, signal) -> float:  # type: ignore[no-untyped-def]
        return statistics.mean(signal(b) for b in world if b.account.label == label)

    def utilisation(b) -> float:  # type: ignore[no-untyped-def]
        return b.usage[-1].active_users / b.account.seats if b.usage else 0.0

    def trend(b) -> float:  # type: ignore[no-untyped-def]
        return b.usage[-1].active_users - b.usage[0].active_users if len(b.usage) > 1 else 0

    def urgent(b) -> int:  # type: ignore[no-untyped-def]
        return sum(t.priority in ("high", "urgent") for t in b.tickets)

    def nps(b) -> float:  # type: ignore[no-untyped-def]
        return statistics.mean(r.score for r in b.nps) if b.nps else 7.0

    for signal in (utilisation, nps):
        assert mean("healthy", signal) > mean("declining", signal) > mean("at_risk", signal)
    assert mean("healthy", urgent) < mean("at_risk", urgent)
    assert mean("healthy", trend) > 0 > mean("at_risk", trend)


def test_given_world_when_looking_for_edge_cases_then_each_kind_exists(world: list) -> None:
    edges = Counter(b.account.edge for b in world)
    assert edges["non_ascii"] and edges["nulls"] and edges["long"]
    assert any(not name.isascii() for name in (b.account.name for b in world))
    assert any(b.account.domain is None for b in world)
    assert max(len(b.account.name) for b in world) > 255
    lifecycles = Counter(v for b in world for v in b.account.lifecycle.values())
    contact_lifecycles = Counter(v for b in world for c in b.contacts for v in c.lifecycle.values())
    assert lifecycles["archived"] and lifecycles["deleted"] and lifecycles["merged"]
    assert contact_lifecycles["merged"] and contact_lifecycles["archived"]
    merged = [b.account for b in world if "merged" in b.account.lifecycle.values()]
    keys = {b.account.key for b in world}
    assert all(a.merged_into in keys and a.merged_into < a.key for a in merged)


def test_given_tie_block_when_generating_then_exactly_that_many_hubspot_contacts_share_one_ms(
    world: list,
) -> None:
    spec = WorldSpec(size=3000, seed=11, tie_block=10_050)
    tied = [c for b in world for c in b.contacts if c.updated_ms == spec.tie_ms]
    assert len(tied) == 10_050
    assert all("hubspot" in c.crms for c in tied)
    assert all(not c.lifecycle for c in tied)  # all live: the block must exceed the cap whole


def test_given_world_when_placing_accounts_then_crms_overlap_and_cover_all(world: list) -> None:
    placements = Counter(len(b.account.crms) for b in world)
    assert placements[1] and placements[2] and placements[3]
    assert all(set(b.account.crms) <= set(vendors()) for b in world)
    external_ids = [b.account.external_id for b in world]
    assert len(set(external_ids)) == len(external_ids)


def test_given_churned_account_when_reading_deals_and_usage_then_lost_renewal_and_no_usage(
    world: list,
) -> None:
    churned = [b for b in world if b.account.label == "churned" and b.deals]
    assert churned
    for b in churned:
        assert any(d.kind == "renewal" and d.stage == "lost" for d in b.deals)
        after = [u for u in b.usage if u.month > b.account.churned_on]
        assert all(u.active_users == 0 for u in after)


def test_given_seed_when_exporting_then_usage_and_labels_files_match_the_world(
    tmp_path: Path,
) -> None:
    spec = WorldSpec(size=40, seed=3)
    db = tmp_path / "crm.sqlite"
    summary = seed(db, spec)
    world = list(generate(spec))
    with open(exports_dir(db) / "accounts.csv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    assert [r["external_id"] for r in truth] == [b.account.external_id for b in world]
    assert [r["label"] for r in truth] == [b.account.label for b in world]
    with open(exports_dir(db) / "usage.csv", encoding="utf-8") as f:
        usage = list(csv.DictReader(f))
    assert len(usage) == sum(len(b.usage) for b in world)
    assert summary["accounts"] == 40
    with pytest.raises(FileExistsError):
        seed(db, spec)


def test_given_worker_processes_when_seeding_then_database_equals_a_single_process_seed(
    tmp_path: Path,
) -> None:
    import sqlite3

    spec = WorldSpec(size=240, seed=13, tie_block=300)
    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    assert seed(one, spec, workers=1)["workers"] == 1
    assert seed(two, spec, workers=2)["workers"] == 2
    for sql in (
        "SELECT vendor, object, id, created_ms, updated_ms, state, data FROM records"
        " ORDER BY vendor, object, id",
        "SELECT * FROM associations ORDER BY 1, 2, 3, 4, 5, 6",
        "SELECT * FROM counters ORDER BY 1",
        "SELECT * FROM meta ORDER BY 1, 2",
    ):
        rows = [sqlite3.connect(db).execute(sql).fetchall() for db in (one, two)]
        assert rows[0] == rows[1] and rows[0], sql
    for name in ("usage.csv", "accounts.csv"):
        assert (exports_dir(one) / name).read_bytes() == (exports_dir(two) / name).read_bytes()
    assert not list(tmp_path.glob("two.sqlite.part*"))
