"""``python3 dev.py demo``: seed the CRM sandbox, start it, and show what each CRM serves.

Until tap-crm and target-health exist (issues #3-#5) the demo shows the sandbox alone: it seeds a
deterministic customer base into ``demo-data/crm.sqlite``, serves HubSpot, Salesforce and Intercom
on loopback, reads every company through each vendor's real paging contract, and prints what it
found next to the seed's ground truth. Then it keeps serving (the web page shows every record)
until Ctrl-C, unless ``--no-serve``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from .app import Sandbox, SandboxConfig
from .auth import DEFAULT_CREDENTIALS
from .seed import exports_dir, seed
from .world import WorldSpec

SF_VERSION = "v66.0"


def _hubspot_companies(client: httpx.Client, base: str) -> tuple[int, int]:
    token = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]
    headers = {"Authorization": f"Bearer {token}"}
    count, calls, after = 0, 0, None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["after"] = after
        resp = client.get(f"{base}/crm/v3/objects/companies", params=params, headers=headers)
        resp.raise_for_status()
        calls += 1
        body = resp.json()
        count += len(body["results"])
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            return count, calls


def _salesforce_accounts(client: httpx.Client, base: str) -> tuple[int, int]:
    creds = DEFAULT_CREDENTIALS["salesforce"]
    token = client.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
        },
    )
    token.raise_for_status()
    auth = token.json()
    headers = {"Authorization": f"Bearer {auth['access_token']}"}
    instance = auth["instance_url"]
    resp = client.get(
        f"{instance}/services/data/{SF_VERSION}/query",
        params={"q": "SELECT Id, Name, SystemModstamp FROM Account ORDER BY SystemModstamp, Id"},
        headers=headers,
    )
    count, calls = 0, 1
    while True:
        resp.raise_for_status()
        body = resp.json()
        count += len(body["records"])
        if body["done"]:
            return count, calls
        resp = client.get(f"{instance}{body['nextRecordsUrl']}", headers=headers)
        calls += 1


def _intercom_companies(client: httpx.Client, base: str) -> tuple[int, int]:
    token = DEFAULT_CREDENTIALS["intercom"]["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Intercom-Version": "2.14"}
    count, calls, scroll = 0, 0, None
    while True:
        params: dict[str, str] = {"scroll_param": scroll} if scroll else {}
        resp = client.get(f"{base}/companies/scroll", params=params, headers=headers)
        resp.raise_for_status()
        calls += 1
        body = resp.json()
        if not body.get("data"):
            return count, calls
        count += len(body["data"])
        scroll = body.get("scroll_param")


READERS = {
    "hubspot": ("companies", _hubspot_companies),
    "salesforce": ("Account", _salesforce_accounts),
    "intercom": ("companies", _intercom_companies),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py demo", description=__doc__)
    parser.add_argument("--size", type=int, default=2000, help="accounts to seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("demo-data"))
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--no-serve", action="store_true", help="exit after showing the result")
    args = parser.parse_args(argv)

    db = args.dir / f"crm-{args.size}-{args.seed}.sqlite"
    if not db.exists():
        print(f"Seeding {args.size:,} accounts into {db} ...", flush=True)
        summary = seed(db, WorldSpec(size=args.size, seed=args.seed))
        print(f"  done in {summary['seconds']} s: {summary['records']}")
    with open(exports_dir(db) / "accounts.csv", encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    labels = Counter(row["label"] for row in truth)
    in_crm = Counter(crm for row in truth for crm in row["crms"].split("|"))

    try:
        sandbox = Sandbox(SandboxConfig(db_path=db, port=args.port)).start()
    except OSError:
        print(f"Port {args.port} is busy; picking free ports instead.", flush=True)
        sandbox = Sandbox(SandboxConfig(db_path=db, port=0)).start()
    try:
        print("\nThe CRM sandbox is serving:")
        for name, url in sandbox.urls.items():
            print(f"  {name:<10} {url}")
        print(
            f"\nGround truth: {len(truth):,} accounts "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(labels.items()))
        )
        print("\nReading every company through each vendor's own paging contract:")
        print(f"  {'CRM':<11}{'object':<11}{'records':>9}{'expected*':>11}{'calls':>7}{'s':>7}")
        with httpx.Client(timeout=30) as client:
            for vendor, (obj, read) in READERS.items():
                started = time.perf_counter()
                count, calls = read(client, sandbox.urls[vendor])
                print(
                    f"  {vendor:<11}{obj:<11}{count:>9,}{in_crm[vendor]:>11,}{calls:>7}"
                    f"{time.perf_counter() - started:>7.2f}"
                )
        print(
            "  * accounts the seed placed in that CRM, including archived, deleted and merged"
            " ones that the live listing leaves out"
        )
        stats = sandbox.ctx.stats.snapshot()
        print(f"\nAPI calls served: {stats['total']:,}; product usage export: {exports_dir(db)}")
        print(f"Web page: {sandbox.urls['admin']}/  (every object and record, as a CRM user sees)")
        if args.no_serve:
            return 0
        print("Serving until Ctrl-C ...", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
