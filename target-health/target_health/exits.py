"""target-health's exit codes: the same for the Singer target and every command, so a scheduler
(cron, Airflow, Dagster, ``meltano run``) can act on them (README, "Exit codes").

- 0 ``OK``: done.
- 1 ``FAILED``: not all done; rerun once the cause is fixed, and nothing is lost (records
  before a fault are stored and STATE covers only them; a CRM write that failed is planned
  again). Too many invalid records, malformed input, a CRM refusing write-back or a write
  failing, another run holding the store past ``writeback.lock_wait_seconds``.
- 2 ``USAGE``: a setting, argument or plan id is wrong; nothing was done. A PostgreSQL store
  that answers and refuses the URL's role, password or database is a setting to fix (2); one
  that does not answer (down, unreachable) may answer a rerun (1).
- 3 ``ATTENTION``: done, and a person must act: write-back held by the blast-radius brake or
  awaiting approval (``target-health approve|reject``), or owned fields to create by hand
  (``setup``). ``writeback.held_is_success: true`` makes a held write-back exit 0 instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK, FAILED, USAGE, ATTENTION = 0, 1, 2, 3


class Exit(Exception):
    """Ends a run with ``code`` after ``message`` (one line) is logged."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def held(out: Mapping[str, Any]) -> bool:
    """Whether a write-back summary left changes held by the brake or awaiting approval."""
    return out.get("status") == "held" or bool(out.get("held_records"))


def of_writeback(out: Mapping[str, Any], config: Mapping[str, Any]) -> int:
    """The exit code of a write-back summary (write_back, roll_back, decide)."""
    if out.get("error") or out.get("failed"):
        return FAILED
    if held(out) and not (config.get("writeback") or {}).get("held_is_success"):
        return ATTENTION
    return OK


def of_store_error(exc: BaseException) -> tuple[int, str]:
    """The exit code and one line for a store that cannot be used (psycopg's OperationalError):
    USAGE when the server answered and refused what database_url names (its ``FATAL:``: no such
    role or database, a wrong password), FAILED when it did not answer. The line is the
    driver's first, which names the host, role or database and never the password."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = USAGE if "FATAL:" in first else FAILED
    return code, f"cannot use the store at database_url: {first}"
