"""tap-crm on the sandbox's worlds side by side: ``python3 bench/profiles.py [--size N]``.

The same customers seeded as the seeded world (small schemas: what the other benchmarks read)
and as the realistic world (the vendors' long standard field lists, custom fields of their own
names), each served by its own sandbox process (rate limits off); tap-crm reads each CRM's
account, contact and deal streams from each, and each peer tap of bench/peers its one stream.
The table gives records/s and the fields per record on both, and the realistic world's records/s
as a share of the seeded one's, from one run (figures on shared machines are noisy: compare the
ratio). Run alone it replaces its section of bench/RESULTS.md (between its markers);
``bench/run.py`` runs it as one of its sections.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_singer, start_sandbox, stop, tap_command, tap_config
from peers import ensure_venv
from peers.hubspot import PEERS as HUBSPOT_PEERS
from peers.intercom import PEERS as INTERCOM_PEERS
from peers.salesforce import PEERS as SALESFORCE_PEERS

from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.world import WorldSpec

ROOT = Path(__file__).resolve().parents[1]
#: Per CRM, the streams whose width the profile changes (accounts, people, deals).
STREAMS = {
    "hubspot": ["hubspot_companies", "hubspot_contacts", "hubspot_deals"],
    "salesforce": ["salesforce_Account", "salesforce_Contact", "salesforce_Opportunity"],
    "intercom": ["intercom_companies", "intercom_contacts"],
    "zendesk": ["zendesk_organizations", "zendesk_users"],
}
PROFILES = ("seeded", "realistic")
BEGIN, END = "<!-- bench/profiles.py -->", "<!-- /bench/profiles.py -->"


def _fields(cmd: list[str], streams: list[str]) -> int:
    """Properties of the streams' schemas (nested ones counted), from a discovery."""
    found = subprocess.run([*cmd[:5], "--discover"], capture_output=True, check=True)

    def count(node: dict[str, Any]) -> int:
        props = node.get("properties") or {}
        return sum(1 + count(p) for p in props.values() if isinstance(p, dict))

    catalog = json.loads(found.stdout)
    return sum(count(e["schema"]) for e in catalog["streams"] if e["tap_stream_id"] in streams)


def _row(profile: str, crm: str, tap: str, streams: str, run: dict[str, Any]) -> dict[str, Any]:
    return {"profile": profile, "crm": crm, "tap": tap, "streams": streams,
            "records": run["records"], "seconds": run["seconds"],
            "records_per_s": run["records"] / run["seconds"]}  # fmt: skip


def measure(workdir: Path, size: int) -> list[dict[str, Any]]:
    """One row per CRM, tap and profile: records, seconds, records/s (and tap-crm's schema
    fields)."""
    peers = [*HUBSPOT_PEERS, *SALESFORCE_PEERS, *INTERCOM_PEERS]
    rows = []
    for profile in PROFILES:
        db = workdir / f"profile-{profile}-{size}.sqlite"
        if not db.exists():
            seed(db, WorldSpec(size=size, seed=1, profile=profile))
        proc, urls = start_sandbox(db, workdir)
        try:
            for crm, streams in STREAMS.items():
                config = tap_config(crm, urls, profile)
                name = f"profile-{profile}-{crm}"
                cmd = tap_command(config, workdir, streams=streams, name=name)
                run = run_singer(cmd, workdir / f"{name}.log")
                row = _row(profile, crm, "tap-crm", ", ".join(streams), run)
                rows.append(row | {"fields": _fields(cmd, streams)})
            for peer in peers:
                python = ensure_venv(peer.venv, peer.requirements)
                cmd = peer.prepare(python, urls, workdir)
                log = workdir / f"profile-{profile}-{peer.venv}.log"
                rows.append(_row(profile, peer.crm, peer.name, peer.stream, run_singer(cmd, log)))
        finally:
            stop(proc)
    return rows


def section(rows: list[dict[str, Any]], size: int) -> list[str]:
    """The markdown section of ``rows``, between its markers."""
    seeded = {(r["crm"], r["tap"]): r for r in rows if r["profile"] == "seeded"}
    lines = [
        BEGIN,
        "",
        f"The seeded and the realistic world ({size:,} accounts each, bench/profiles.py, run"
        f" {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}):"
        " tap-crm over each CRM's account, contact and deal streams, and each peer tap over its"
        " stream, one process each, one sandbox process per world (limits off); fields: the"
        " streams' schema properties, nested ones included:",
        "",
        "| CRM | tap | streams | world | fields | records | seconds | records/s"
        " | realistic / seeded records/s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["crm"], r["tap"] != "tap-crm", r["tap"])):
        base = seeded[(r["crm"], r["tap"])]["records_per_s"]
        share = "" if r["profile"] == "seeded" else f"{r['records_per_s'] / base:.2f}"
        fields = f"{r['fields']:,}" if "fields" in r else ""
        lines.append(
            f"| {r['crm']} | {r['tap']} | {r['streams']} | {r['profile']} | {fields}"
            f" | {r['records']:,} | {r['seconds']:.1f} | {r['records_per_s']:,.0f} | {share} |"
        )
    return [*lines, "", END]


def write(lines: list[str], results: Path) -> None:
    """Replace this section of ``results`` (or add it at the end)."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=5_000, help="accounts per world")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-profiles-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lines = section(measure(workdir, args.size), args.size)
    print("\n".join(lines))
    if not args.no_write:
        write(lines, ROOT / "bench" / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
