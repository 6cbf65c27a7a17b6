"""PII micro-benchmark: ``python bench/pii_bench.py [--records 50000]``.

Applies a ``PiiPolicy`` to a 20-field record (HubSpot-like, nested ``properties``) with 4 PII
fields: email (encrypt + token), first and last name (encrypt), phone (hash). Prints records/s for
the policy and, as the baseline it is compared with, for copying the record. Figures on shared
2-core machines are noisy: read the ratio, not the absolute numbers. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "connectors"))

from crm_connectors.pii import KeyRing, PiiPolicy  # noqa: E402


def make_record(i: int) -> dict[str, Any]:
    props: dict[str, Any] = {
        "email": f"person{i}@example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "phone": f"+44 20 7946 {i % 10000:04d}",
        "company": "Example Ltd",
        "lifecyclestage": "customer",
        "hs_object_id": str(i),
        "createdate": "2026-01-01T00:00:00Z",
        "lastmodifieddate": "2026-11-01T00:00:00Z",
        "jobtitle": "Engineer",
        "country": "GB",
        "hs_lead_status": "OPEN",
        "num_notes": 3,
        "annualrevenue": 120000.0,
        "industry": "SOFTWARE",
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-11-01T00:00:00Z",
        "archived": False,
    }  # 5 top-level + 15 nested = 20 fields


def rate(fn: Callable[[dict[str, Any]], Any], records: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for record in records:
        fn(record)
    return len(records) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    keys = KeyRing(
        {"k1": bytes(range(32))}, "k1", {"h1": bytes(range(100, 132))}, "h1"
    )  # fixed bench keys, never used for real data
    policy = PiiPolicy(
        keys,
        {
            "contacts": {
                "properties.email": "email",
                "properties.firstname": "name",
                "properties.lastname": "name",
                "properties.phone": {"kind": "phone", "mode": "hash"},
            }
        },
    )
    plan = policy.plan("contacts")
    records = [make_record(i) for i in range(args.records)]
    rate(plan.apply, records[:2000])  # warm-up

    def copy(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "properties": dict(record["properties"])}

    baseline = rate(copy, records)
    via_plan = rate(plan.apply, records)
    via_policy = rate(lambda r: policy.apply("contacts", r), records)
    enc = keys.encryptor("contacts", "properties.email")
    tok = keys.tokenizer("email")
    emails = [r["properties"]["email"] for r in records]
    started = time.perf_counter()
    for email in emails:
        enc(email)
    enc_rate = len(emails) / (time.perf_counter() - started)
    started = time.perf_counter()
    for email in emails:
        tok(email)
    tok_rate = len(emails) / (time.perf_counter() - started)

    print(f"records: {args.records} (20 fields, 4 PII: 3 encrypted, 1 hashed, 1 extra token)")
    print(f"copy only (baseline)        {baseline:>12,.0f} records/s")
    print(f"plan.apply                  {via_plan:>12,.0f} records/s")
    print(f"policy.apply(stream, r)     {via_policy:>12,.0f} records/s")
    print(f"  per-record overhead       {1e6 / via_plan - 1e6 / baseline:>12.2f} us")
    print(f"  slowdown vs copy          {baseline / via_plan:>12.1f}x")
    print(f"encrypt one value           {enc_rate:>12,.0f} values/s")
    print(f"token of one value          {tok_rate:>12,.0f} values/s")


if __name__ == "__main__":
    main()
