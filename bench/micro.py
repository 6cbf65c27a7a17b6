"""JSON and validation micro-benchmark: ``python bench/micro.py [--records 2000] [--out FILE]``.

Measures, in one run and on the same synthetic CRM records (a HubSpot-like contact of 32 fields:
strings, numbers, booleans, nulls, ISO date-times and a date), the figures the source comments
cite (bench/PERF-NOTES.md):

- encoding Singer RECORD messages: tap-crm's orjson ``encode`` vs singer-sdk's ``serialize_json``
  (simplejson) and its whole ``serialize_message`` (``to_dict`` first) vs stdlib ``json.dumps``;
- parsing those lines: orjson vs singer-sdk's ``deserialize_json`` (stdlib, floats as Decimal)
  vs plain ``json.loads`` vs ``simplejson.loads``;
- validating the records: ``jsonschema_rs`` vs ``jsonschema.Draft202012Validator``;
- target-health's time checks: its ``Validator`` (quick path for the common shapes) vs the same
  schema with a check that parses every value with ``iso_to_ms`` vs formats not validated, and
  the two checks alone on the date-time and date values.

Each figure is the best (min) of ``--repeats`` passes over all records, timed with
``time.perf_counter``. Figures on shared machines are noisy: read the ratios, which come from
the same run. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import gc
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import orjson
from singer_sdk.singerlib.encoding.simple import RecordMessage, SimpleSingerWriter
from singer_sdk.singerlib.json import deserialize_json, serialize_json

from crm_connectors.timefmt import ms_to_iso
from tap_crm.writer import encode
from target_health.validate import TimeBounds, Validator

try:
    import simplejson
except ImportError:  # singer-sdk requires it, but the figures do not
    simplejson = None

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
BOUNDS = TimeBounds.around(NOW, dt.date(1970, 1, 1), 3660)

_STAGES = ["subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer", "other"]
_NAMES = ["Ada", "Grace", "José", "Zoë", "Łukasz", "Chidi", "Mei", "Søren", "Priya", "Tom"]
_CITIES = ["London", "Zürich", "São Paulo", "Boston", "Kraków", "Lagos", "Osaka", None]


def _time(rng: random.Random, shape: str) -> str:
    """A time of 2015-2026 in one of the shapes the CRMs send."""
    ms = rng.randrange(1_420_070_400_000, 1_798_761_600_000)
    iso = ms_to_iso(ms)  # 2025-03-04T05:06:07.123Z, HubSpot's form
    if shape == "salesforce":
        return iso[:23] + "+0000"
    if shape == "date":
        return iso[:10]
    return iso


def make_record(i: int, rng: random.Random) -> dict[str, Any]:
    """A flat HubSpot-like contact: 32 fields, about a quarter of the optional ones null."""

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.25 else value

    first, last = rng.choice(_NAMES), rng.choice(_NAMES) + "son"
    return {
        "id": str(100_000 + i),
        "email": f"{first.lower()}.{i}@example.com",
        "firstname": first,
        "lastname": last,
        "phone": maybe(f"+44 20 7946 {i % 10000:04d}"),
        "mobilephone": maybe(f"+1 617 555 {i % 10000:04d}"),
        "company": maybe(f"{last} & Partners Ltd"),
        "jobtitle": maybe(rng.choice(["Engineer", "VP Customer Success", "CFO", "Head of Ops"])),
        "website": maybe(f"https://www.{last.lower()}-{i}.example"),
        "address": maybe(f"{rng.randrange(1, 300)} High Street"),
        "city": rng.choice(_CITIES),
        "state": maybe("MA"),
        "zip": maybe(f"{rng.randrange(10000, 99999)}"),
        "country": maybe(rng.choice(["GB", "US", "DE", "BR", "JP"])),
        "lifecyclestage": rng.choice(_STAGES),
        "hs_lead_status": maybe(rng.choice(["NEW", "OPEN", "IN_PROGRESS", "CONNECTED"])),
        "hubspot_owner_id": maybe(str(rng.randrange(1_000_000, 9_999_999))),
        "num_notes": rng.randrange(0, 40),
        "num_contacted_notes": maybe(rng.randrange(0, 10)),
        "hs_email_open_count": rng.randrange(0, 200),
        "hs_analytics_num_page_views": rng.randrange(0, 5000),
        "annualrevenue": maybe(round(rng.uniform(1e4, 5e7), 2)),
        "hs_predictivescoringtier": maybe(rng.choice(["tier_1", "tier_2", "tier_3"])),
        "hs_lead_score": maybe(round(rng.uniform(0, 100), 3)),
        "hs_email_optout": rng.random() < 0.1,
        "hs_is_unworked": maybe(rng.random() < 0.5),
        "notes": maybe("Renewal call booked; asked about the EU data residency add-on."),
        "createdate": _time(rng, "hubspot"),
        "lastmodifieddate": _time(rng, "hubspot"),
        "hs_last_sales_activity_timestamp": maybe(_time(rng, "salesforce")),
        "closedate": maybe(_time(rng, "hubspot")),
        "hs_birthdate": maybe(_time(rng, "date")),
    }


_TIME_FIELDS = {
    "createdate": "date-time",
    "lastmodifieddate": "date-time",
    "hs_last_sales_activity_timestamp": "date-time",
    "closedate": "date-time",
    "hs_birthdate": "date",
}


def make_schema(sample: dict[str, Any]) -> dict[str, Any]:
    """A stream SCHEMA as a singer-sdk tap declares one: every property typed, nullable."""
    props: dict[str, Any] = {}
    for key in sample:
        if key in _TIME_FIELDS:
            props[key] = {"type": ["string", "null"], "format": _TIME_FIELDS[key]}
        elif key in ("num_notes", "num_contacted_notes", "hs_email_open_count") or key.startswith(
            "hs_analytics"
        ):
            props[key] = {"type": ["integer", "null"]}
        elif key in ("annualrevenue", "hs_lead_score"):
            props[key] = {"type": ["number", "null"]}
        elif key in ("hs_email_optout", "hs_is_unworked"):
            props[key] = {"type": ["boolean", "null"]}
        else:
            props[key] = {"type": ["string", "null"]}
    props["id"] = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "required": ["id", "email", "lastmodifieddate"],
    }


def one_pass(fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Seconds per item of one pass of ``fn`` over ``items``, the cyclic garbage collector off
    (as ``timeit`` does: its pauses depend on everything else the process holds)."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for item in items:
            fn(item)
        return (time.perf_counter() - started) / len(items)
    finally:
        gc.enable()


Row = tuple[str, str, float, float]  # section, variant, seconds per item, ratio to the base
Case = tuple[str, Callable[[Any], Any], list[Any]]


def section(name: str, cases: list[Case], repeats: int) -> list[Row]:
    """Rows of one section, each the best of ``repeats`` passes; the first case is the base the
    ratios divide. The passes take turns (case 1, 2, ..., 1, 2, ...), so a burst of load from
    elsewhere on the machine falls on every case alike rather than on one."""
    for _, fn, items in cases:
        one_pass(fn, items[: max(1, len(items) // 10)])  # warm-up
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for spent, (_, fn, items) in zip(times, cases, strict=True):
            spent.append(one_pass(fn, items))
    base = min(times[0])
    return [
        (name, case[0], min(spent), base / min(spent))
        for case, spent in zip(cases, times, strict=True)
    ]


def table(rows: list[Row]) -> str:
    lines = [
        "| measure | variant | µs per item | items/s | speed vs first row |",
        "|---|---|---:|---:|---:|",
    ]
    for name, variant, per_item, ratio in rows:
        lines.append(
            f"| {name} | {variant} | {per_item * 1e6:.2f} | {1 / per_item:,.0f} | {ratio:.1f}x |"
        )
    return "\n".join(lines)


def machine() -> str:
    versions = ", ".join(
        f"{dist} {_version(dist)}"
        for dist in ("orjson", "simplejson", "jsonschema", "jsonschema-rs", "singer-sdk")
    )
    return (
        f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"{_cpus()} CPUs; Python {platform.python_version()}; {versions}"
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, help="also write the table, as markdown, to FILE")
    args = parser.parse_args()
    repeats = args.repeats

    rng = random.Random(6)  # the same records every run
    records = [make_record(i, rng) for i in range(args.records)]
    schema = make_schema(records[0])
    extracted = dt.datetime.now(UTC)
    messages = [
        {"type": "RECORD", "stream": "contacts", "record": r, "time_extracted": extracted}
        for r in records
    ]
    sdk_messages = [RecordMessage("contacts", r, time_extracted=extracted) for r in records]
    sdk_writer = SimpleSingerWriter()

    def stdlib_dumps(message: dict[str, Any]) -> str:
        return json.dumps(message, default=_iso, separators=(",", ":"))

    def plain_loads(line: str) -> Any:
        return json.loads(line)

    byte_lines = [encode(m) for m in messages]
    text_lines = [line.decode() for line in byte_lines]

    rows: list[Row] = []
    rows += section(
        "encode RECORD",
        [
            ("singer-sdk serialize_json (simplejson)", serialize_json, messages),
            (
                "singer-sdk serialize_message (to_dict + simplejson)",
                sdk_writer.serialize_message,
                sdk_messages,
            ),
            ("stdlib json.dumps", stdlib_dumps, messages),
            ("tap-crm encode (orjson)", encode, messages),
        ],
        repeats,
    )
    parse_cases: list[Case] = [
        ("singer-sdk deserialize_json (stdlib, Decimal floats)", deserialize_json, text_lines),
        ("stdlib json.loads", plain_loads, text_lines),
    ]
    if simplejson is not None:
        parse_cases.append(("simplejson.loads", simplejson.loads, text_lines))
    parse_cases.append(("orjson.loads (bytes)", orjson.loads, byte_lines))
    rows += section("parse RECORD line", parse_cases, repeats)

    py_validator = jsonschema.Draft202012Validator(schema)
    rs_validator = jsonschema_rs.validator_for(schema)
    _agree(records, py_validator.is_valid, rs_validator.is_valid)
    rows += section(
        "validate record (formats not checked)",
        [
            ("jsonschema Draft202012Validator.is_valid", py_validator.is_valid, records),
            ("jsonschema_rs validator_for().is_valid", rs_validator.is_valid, records),
        ],
        repeats,
    )

    def parse_every(value: Any) -> bool:
        return not isinstance(value, str) or (not value.isdigit() and BOUNDS.ms(value) is not None)

    project = Validator(schema, BOUNDS)
    parsing = jsonschema_rs.validator_for(
        schema, validate_formats=True, formats={"date-time": parse_every, "date": parse_every}
    )
    unchecked = jsonschema_rs.validator_for(schema, validate_formats=False)
    _agree(records, project.is_valid, parsing.is_valid, unchecked.is_valid)
    for bad in ("9999-12-31T00:00:00.000Z", "2025-02-30T00:00:00.000Z", "zzz-not-a-date"):
        record = {**records[0], "lastmodifieddate": bad}  # the checks do run: they reject these
        assert not project.is_valid(record) and not parsing.is_valid(record), bad
        assert unchecked.is_valid(record), bad
    rows += section(
        "validate record, times checked",
        [
            ("jsonschema_rs, every time parsed (iso_to_ms)", parsing.is_valid, records),
            ("target-health Validator (quick path)", project.is_valid, records),
            ("jsonschema_rs, formats not validated", unchecked.is_valid, records),
        ],
        repeats,
    )
    quick = BOUNDS.checks()["date-time"]
    values = [r[k] for r in records for k in _TIME_FIELDS if r[k] is not None]
    assert all(quick(v) == parse_every(v) for v in values)
    rows += section(
        "time check alone, per value",
        [
            ("parse with iso_to_ms, compare ms", parse_every, values),
            ("TimeBounds.checks() quick path", quick, values),
        ],
        repeats,
    )

    head = (
        f"{machine()}\n\n{args.records} records of {len(records[0])} fields "
        f"({sum(len(x) for x in byte_lines) // len(byte_lines)} bytes per RECORD line), "
        f"{len(values)} time values; best of {repeats} passes.\n"
    )
    text = f"{head}\n{table(rows)}\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def _agree(records: list[dict[str, Any]], *checks: Callable[[Any], bool]) -> None:
    """Every record valid for every validator (else the figures compare different work)."""
    for record in records:
        results = {check(record) for check in checks}
        if results != {True}:
            sys.exit(f"validators disagree or reject a generated record: {results}")


if __name__ == "__main__":
    main()
