"""singer-io tap-intercom (PyPI) on the contacts stream, against the sandbox.

The tap reads contacts with ``POST /contacts/search`` (``updated_at`` from the start date,
ascending, 150 a page) after one ``GET /tags`` to check its token. Its discovery reads the
schemas it ships, without a call. The stream is selected as in a user's catalog: the contacts
entry and every field, from a start date before any record.
"""

from __future__ import annotations

from pathlib import Path

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

from . import WRAPPERS, Peer, discover, select_only, write_json

STREAM = "contacts"
START_DATE = "2000-01-01T00:00:00Z"


def prepare(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    config = write_json(
        workdir / "tap-intercom-config.json",
        {
            "access_token": DEFAULT_CREDENTIALS["intercom"]["access_token"],
            "start_date": START_DATE,
            "user_agent": "crm-health-sync bench",
        },
    )
    tap = [str(python), "-I", str(WRAPPERS / "intercom_tap.py"), urls["intercom"]]
    tap += ["--config", str(config)]
    catalog = select_only(discover(tap, workdir, "tap-intercom"), STREAM, "tap-intercom")
    return [*tap, "--catalog", str(write_json(workdir / "tap-intercom-catalog.json", catalog))]


PEERS: list[Peer] = [
    Peer(
        name="singer-io tap-intercom",
        venv="tap-intercom",
        requirements=("tap-intercom==2.2.5",),
        stream=STREAM,
        crm="intercom",
        prepare=prepare,
    )
]
