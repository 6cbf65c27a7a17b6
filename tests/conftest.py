"""Shared fixtures: a seeded sandbox over real loopback HTTP, one per test that asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tapkit import fresh_store, postgres_answers

from crm_connectors.sandbox.app import Sandbox, SandboxConfig
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec

MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """Start sandboxes on free ports: ``make_sandbox(vendors=("hubspot",), size=40, seed=3,
    tie_block=0, profile="vanilla", tls=False, rate_limits="off", options={...}, faults=[...])``.

    ``size=0`` starts an empty sandbox. Each call gets its own database under ``tmp_path``;
    all are stopped at teardown.
    """
    started: list[Sandbox] = []

    def make(
        vendors: tuple[str, ...] = ("hubspot", "salesforce", "intercom"),
        size: int = 30,
        seed_value: int = 7,
        tie_block: int = 0,
        profile: str = "seeded",
        **config: Any,
    ) -> Sandbox:
        db = tmp_path / f"sandbox-{len(started)}.sqlite"
        if size:
            spec = WorldSpec(size=size, seed=seed_value, tie_block=tie_block, profile=profile)
            seed(db, spec, vendors)
        config.setdefault("rate_limits", "off")
        sandbox = Sandbox(SandboxConfig(db_path=db, port=0, vendors=vendors, **config)).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once on SQLite and once on PostgreSQL (a schema of its own;
    skipped, saying why, where no PostgreSQL answers)."""
    if request.param == "postgresql" and (why := postgres_answers()):
        pytest.skip(why)
    with fresh_store(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["seeded", "realistic"])
def profile(request: pytest.FixtureRequest) -> str:
    """A sandbox world for a fidelity suite: the seeded one, and one shaped like a real
    customer's CRMs (long schemas, custom fields of their own names: WorldSpec.profile)."""
    return str(request.param)
