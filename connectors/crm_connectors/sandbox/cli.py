"""``crm-sandbox``: a local stand-in for HubSpot, Salesforce and Intercom.

crm-sandbox seed  --db crm.sqlite --size 1000 --seed 1 [--profile seeded|vanilla|realistic]
crm-sandbox serve --db crm.sqlite [--port 8700] [--tls] [--no-rate-limits]
                  [--fault kind=rate_limit,vendor=hubspot,probability=0.2] [--faults FILE]
                  [--option hubspot.burst_limit=10]
crm-sandbox stats  [--url http://127.0.0.1:8700]
crm-sandbox fault  [--url ...] kind=server_error,vendor=salesforce,every=5
crm-sandbox credentials
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from .app import Sandbox, SandboxConfig
from .emulators import credentials, emulators, vendors
from .faults import Fault
from .world import PROFILES


def _option(text: str) -> tuple[str, str, Any]:
    key, sep, raw = text.partition("=")
    vendor, dot, name = key.partition(".")
    if not sep or not dot or vendor not in vendors():
        raise argparse.ArgumentTypeError(
            f"--option wants VENDOR.NAME=VALUE with VENDOR in {', '.join(vendors())}, got {text!r}"
        )
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return vendor, name, value


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the three CRM APIs on loopback")
    serve.add_argument("--db", default="crm-sandbox.sqlite", help="SQLite state file")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    serve.add_argument(
        "--port",
        type=int,
        default=8700,
        help="web page and control API; each CRM listens on this port plus its offset ("
        + ", ".join(f"{name} +{e.port_offset}" for name, e in emulators().items())
        + "); 0 picks free ports",
    )
    serve.add_argument("--vendors", default=",".join(vendors()), help="comma-separated subset")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed cert")
    serve.add_argument("--no-rate-limits", action="store_true", help="do not enforce limits")
    serve.add_argument("--option", type=_option, action="append", default=[], metavar="V.K=X")
    serve.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC")
    serve.add_argument("--faults", type=Path, help="JSON file: a list of fault objects")
    serve.add_argument("--fault-seed", type=int, default=0)
    serve.add_argument("--ready-file", type=Path, help="write the URLs as JSON here once up")

    seed = sub.add_parser("seed", help="generate deterministic CRM data into a new database")
    seed.add_argument("--db", default="crm-sandbox.sqlite")
    seed.add_argument("--size", type=int, default=1000, help="number of accounts (10..1000000)")
    seed.add_argument("--seed", type=int, default=1, help="random seed")
    seed.add_argument("--vendors", default=",".join(vendors()))
    seed.add_argument(
        "--tie-block",
        type=int,
        default=None,
        help="contacts sharing one modification millisecond (default: 10050 from size 2000)",
    )
    seed.add_argument(
        "--profile",
        choices=PROFILES,
        default="seeded",
        help="seeded: with the custom fields a CS team adds (default); vanilla: plain CRMs;"
        " realistic: long standard schemas and custom fields of their own names",
    )
    seed.add_argument("--force", action="store_true", help="replace an existing database")

    for name, help_text in (("stats", "print the call counters"), ("faults", "list faults")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default="http://127.0.0.1:8700")
    fault = sub.add_parser("fault", help="add a fault to a running sandbox")
    fault.add_argument("spec", type=_fault)
    fault.add_argument("--url", default="http://127.0.0.1:8700")
    sub.add_parser("credentials", help="print the sandbox's well-known credentials")
    return parser


def _serve(args: argparse.Namespace) -> int:
    options: dict[str, dict[str, Any]] = {}
    for vendor, name, value in args.option:
        options.setdefault(vendor, {})[name] = value
    faults = list(args.fault)
    if args.faults:
        faults += [Fault.from_dict(item) for item in json.loads(args.faults.read_text())]
    chosen = tuple(v for v in args.vendors.split(",") if v)
    unknown = set(chosen) - set(vendors())
    if unknown:
        print(f"crm-sandbox: unknown vendor(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    config = SandboxConfig(
        db_path=args.db,
        host=args.host,
        port=args.port,
        vendors=chosen,
        tls=args.tls,
        rate_limits="off" if args.no_rate_limits else "real",
        options=options,
        faults=faults,
        fault_seed=args.fault_seed,
    )
    try:
        sandbox = Sandbox(config).start()
    except OSError as exc:
        print(f"crm-sandbox: cannot listen on {args.host}:{args.port}+: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for name, url in sandbox.urls.items():
        print(f"{name:>10}  {url}", flush=True)
    if args.ready_file:
        args.ready_file.write_text(json.dumps(sandbox.urls))
    stop.wait()
    sandbox.stop()
    return 0


def _seed(args: argparse.Namespace) -> int:
    from .seed import seed
    from .world import WorldSpec

    if not 10 <= args.size <= 1_000_000:
        print("crm-sandbox: --size must be between 10 and 1000000", file=sys.stderr)
        return 2
    db = Path(args.db)
    if args.force:
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            path.unlink(missing_ok=True)
    spec = WorldSpec(size=args.size, seed=args.seed, tie_block=args.tie_block, profile=args.profile)

    def progress(n: int) -> None:
        if n % 100_000 == 0:
            print(f"  {n:,} accounts", file=sys.stderr, flush=True)

    try:
        summary = seed(db, spec, tuple(v for v in args.vendors.split(",") if v), progress)
    except FileExistsError as exc:
        print(f"crm-sandbox: {exc} (use --force)", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def _get(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback control API)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback control API)
        return json.loads(resp.read())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        return _serve(args)
    if args.command == "seed":
        return _seed(args)
    if args.command == "stats":
        print(json.dumps(_get(f"{args.url}/_sandbox/stats"), indent=2))
        return 0
    if args.command == "faults":
        print(json.dumps(_get(f"{args.url}/_sandbox/faults"), indent=2))
        return 0
    if args.command == "fault":
        print(json.dumps(_get(f"{args.url}/_sandbox/faults", "POST", args.spec.to_dict())))
        return 0
    if args.command == "credentials":
        print(json.dumps(credentials(), indent=2))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
