"""singer-sdk's own standard tap tests, once per CRM, against a sandbox.

Given a small seeded sandbox, when singer-sdk's test suite (``get_tap_test_class``) runs tap-crm
in-process for one CRM at a time, then its CLI prints, discovery round-trips, every stream
connects, returns records whose keys and values match the stream's schema (PII fields
included, as the encrypted strings the schema declares), primary keys are unique and non-null,
and the final state is clean.

How the dynamic sandbox meets the SDK's import-time config: the SDK builds each test class when
this module is imported, and it already instantiates the tap then (it runs discovery to list the
streams it parametrizes over), so the config must hold real URLs at import. The module therefore
starts one sandbox on free ports at import, stopped by ``atexit`` (a fixture would start too
late). It costs one small seed and three discoveries at collection time.

Running the tap in-process has one side effect on the test process: each ``TapCrm`` attaches a
log-redaction filter to the root logger's handlers and sets the ``httpx`` logger to WARNING, and
neither is undone. Other test modules check what httpx logs (test_client_secrets.py), so this
module snapshots the logging setup and restores it after building the classes and after its
tests (``_isolated_logging``).
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tapkit import tap_config

from crm_connectors.sandbox.app import Sandbox, SandboxConfig
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec
from tap_crm.tap import LOGGERS, TapCrm

VENDORS = ("hubspot", "salesforce", "intercom")


@contextmanager
def _isolated_logging() -> Iterator[None]:
    """Undo what in-process taps do to logging: levels and filters of the loggers the tap
    touches, and filters added to the root logger's handlers."""
    names = [*LOGGERS, ""]
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg, lg.level, list(lg.filters)) for lg in loggers]
    handlers = {h: list(h.filters) for lg in loggers for h in lg.handlers}
    try:
        yield
    finally:
        for lg, level, filters in saved:
            lg.setLevel(level)
            lg.filters[:] = filters
        for handler, filters in handlers.items():
            handler.filters[:] = filters


def _start_sandbox() -> Sandbox:
    """A sandbox with the three CRMs on free ports, removed when the test process exits."""
    workdir = Path(tempfile.mkdtemp(prefix="tap-crm-sdk-"))
    db = workdir / "sandbox.sqlite"
    seed(db, WorldSpec(size=20, seed=7), VENDORS)
    sandbox = Sandbox(SandboxConfig(db_path=db, port=0, rate_limits="off")).start()

    def stop() -> None:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    # The seeded world has no Intercom tags; a workspace's first tag, made through Intercom's
    # own API, gives the intercom_tags stream a record to be checked like the others.
    reply = httpx.post(
        f"{sandbox.urls['intercom']}/tags",
        json={"name": "sdk-standard-tests"},
        headers={"Authorization": f"Bearer {DEFAULT_CREDENTIALS['intercom']['access_token']}"},
    )
    reply.raise_for_status()
    return sandbox


SANDBOX = _start_sandbox()
#: No record cap: the sandbox is small, and the archived/deleted records that come last in a
#: stream (flagged with _sdc_deleted_at) must be checked against the schema too.
SUITE = SuiteConfig(max_records_limit=None)


def _test_class(crm: str) -> type:
    # parse_env_config=False: TAP_CRM_* variables of the developer's shell stay out of the run.
    with _isolated_logging():
        return get_tap_test_class(
            TapCrm,
            config=tap_config(SANDBOX, [crm]),
            suite_config=SUITE,
            parse_env_config=False,
        )


@pytest.fixture(autouse=True, scope="module")
def _restore_logging() -> Iterator[None]:
    with _isolated_logging():
        yield


TestHubSpot = _test_class("hubspot")
TestSalesforce = _test_class("salesforce")
TestIntercom = _test_class("intercom")
