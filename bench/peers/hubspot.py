"""HubSpot peer taps on the contacts stream: singer-io ``tap-hubspot`` and MeltanoLabs
``meltano-tap-hubspot``, each from PyPI in its own venv, started through a wrapper in this package
(``hubspot_singer_io.py``, ``hubspot_meltano.py``) that sends their ``https://api.hubapi.com``
calls to the sandbox.

``prepare`` writes the config (the sandbox's private app token), runs the peer's own discovery
through the wrapper, selects the contacts stream with every field (as ``meltano select tap
contacts.*`` would), and returns the sync's command line. Discovery is narrowed to the selected
stream by the wrappers: both taps read the property definitions of every object type they know,
and the sandbox emulates the CRM v3 API for six object types only (see the wrappers).
"""

from __future__ import annotations

from pathlib import Path

from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

from . import WRAPPERS, Peer, discover, select_only, write_json

STREAM = "contacts"
TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]


def prepare_singer_io(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    """singer-io tap-hubspot 4.5.0: the private app token goes in ``api_key`` (sent as a Bearer
    token); the catalog is passed as ``--properties``. Its sync reads GET
    /crm/v3/objects/contacts (limit 100, every selected property, associations) from
    ``start_date``, filtering on ``updatedAt``: 2000-01-01 makes it a full sync."""
    config = write_json(
        workdir / "tap-hubspot-config.json",
        {"api_key": TOKEN, "start_date": "2000-01-01T00:00:00Z"},
    )
    tap = [str(python), "-I", str(WRAPPERS / "hubspot_singer_io.py"), urls["hubspot"], STREAM]
    tap += ["--config", str(config)]
    catalog = select_only(discover(tap, workdir, "tap-hubspot"), STREAM, "tap-hubspot")
    return [*tap, "--properties", str(write_json(workdir / "tap-hubspot-catalog.json", catalog))]


def prepare_meltano(python: Path, urls: dict[str, str], workdir: Path) -> list[str]:
    """MeltanoLabs meltano-tap-hubspot 0.10.1 (singer-sdk) with the private app token as
    ``access_token``. No ``start_date``: a first sync with none reads GET
    /crm/v3/objects/contacts (limit 100, every property). With one, the tap reads the search API
    (lastmodifieddate GTE the bookmark, restarting from the highest value seen at HubSpot's
    10,000-result cap), which never ends on the sandbox's seeded bulk-import block of 10,050
    contacts sharing one lastmodifieddate millisecond: the same cap applies on real HubSpot."""
    config = write_json(workdir / "meltano-tap-hubspot-config.json", {"access_token": TOKEN})
    tap = [str(python), "-I", str(WRAPPERS / "hubspot_meltano.py"), urls["hubspot"], STREAM]
    tap += ["--config", str(config)]
    catalog = select_only(
        discover(tap, workdir, "meltano-tap-hubspot"), STREAM, "meltano-tap-hubspot"
    )
    return [
        *tap,
        "--catalog",
        str(write_json(workdir / "meltano-tap-hubspot-catalog.json", catalog)),
    ]


PEERS: list[Peer] = [
    Peer(
        name="singer-io tap-hubspot",
        venv="tap-hubspot",
        requirements=("tap-hubspot==4.5.0",),
        stream=STREAM,
        crm="hubspot",
        prepare=prepare_singer_io,
    ),
    Peer(
        name="meltano-tap-hubspot",
        venv="meltano-tap-hubspot",
        requirements=("meltano-tap-hubspot==0.10.1",),
        stream=STREAM,
        crm="hubspot",
        prepare=prepare_meltano,
    ),
]
