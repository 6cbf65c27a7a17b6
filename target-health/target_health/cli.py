"""``target-health`` commands beside the Singer target. They read the target's settings: its
``database_url`` and, for write-back, the CRM credentials (the same settings as tap-crm's), from
the JSON file ``--config`` names or, without one (or with singer-sdk's ``--config ENV``), from
``TARGET_HEALTH_*`` environment variables: what Meltano hands a plugin command, so
``meltano invoke target-health:plan`` runs on the project's own settings, secrets included,
with no second config file. A store the settings name that does not exist is an error (but for
``setup``), not a new empty one.

``target-health setup``: create the owned fields in each CRM (idempotent), or list exactly
which to create by hand where permissions lack.
``target-health plan``: what write-back would change in each CRM (saved, nothing written).
``target-health apply``: plan, then write the changes (journaled before each write).
``target-health rollback PLAN_ID``: undo a plan: its fields' before-values restored, the
follow-ups it started deleted; conflicts are reported.
``target-health rollback --model-version V``: undo a model: every applied plan of it, newest
first (docs/ROLLBACK.md).
``target-health approve|reject PLAN_ID``: decide on changes held by the brake or the gate.
``target-health runs``: the write-back plans with their counts and status.

``target-health forget --email X | --contact-id CRM:ID | --token T``: erase a person from the
store (target_health.erasure; docs/PRIVACY.md).

``target-health backtest``: how well the stored bands separated the accounts that later churned.
For each account, its latest snapshot on or before ``--snapshot`` (default: the latest snapshot
date minus the horizon) is a case; it churned if its churn date falls within
``--horizon-days`` after the snapshot. Printed: per band, precision and recall of "this band or
worse" as a churn predictor, and the score's AUC (Mann-Whitney, ties averaged).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from crm_connectors import settings as crm_settings
from crm_connectors.errors import ConfigError

from . import exits
from .runlock import StoreBusy, exclusive, wait_seconds
from .scoring import backtest, cases_at
from .scoring.model import DEFAULT_MODEL
from .store import Store, StoreVersionError, open_store, store_url

#: Each command and what it does (Meltano's plugin commands: plugins/generate.py).
COMMAND_HELP = {
    "setup": "Create the fields write-back owns in each CRM (idempotent), or list those to create"
    " by hand",
    "plan": "What write-back would change in each CRM (saved, nothing written)",
    "apply": "Plan, then write the changes",
    "runs": "The write-back plans with their counts and status",
    "show": "A plan's changes field by field, before -> after: show PLAN_ID [--format csv|json]",
    "approve": "Write the changes of a plan held by the brake or the gate: approve PLAN_ID",
    "reject": "Drop the held changes of a plan: reject PLAN_ID",
    "rollback": "Undo a plan (rollback PLAN_ID) or a model (rollback --model-version V)",
    "forget": "Erase a person from the store: forget --email X | --contact-id CRM:ID | --token T",
    "backtest": "How well the stored bands separated the accounts that later churned",
}
COMMANDS = tuple(COMMAND_HELP)


class UsageError(Exception):
    """A wrong argument or config file: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a wrong argument a :class:`UsageError` (one line) instead of the usage
    block and message it prints; ``--help`` still prints the usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


#: The prefix of the target's settings in the environment (Meltano's and singer-sdk's).
ENV_PREFIX = "TARGET_HEALTH_"
CONFIG_HELP = "the target's JSON config file (default: the TARGET_HEALTH_* environment variables)"


def _config(path: str | None) -> dict[str, Any]:
    """The target's settings from the JSON file ``path`` (or the environment), checked as the
    target checks them (one line naming a wrong setting)."""
    from .target import TargetHealth

    if not path or path == "ENV":
        config = env_config(os.environ)
    elif problem := crm_settings.check_command_line(["--config", path]):
        raise UsageError(problem)
    else:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    crm_settings.read_numbers(config, TargetHealth.config_jsonschema)
    crm_settings.check(config, TargetHealth.config_jsonschema)
    return config


def env_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """The target's settings set in ``environ`` (``TARGET_HEALTH_<NAME>``), each parsed by its
    type in the target's settings schema: numbers, true/false, JSON for objects and arrays."""
    from .target import TargetHealth

    out: dict[str, Any] = {}
    for name, schema in TargetHealth.config_jsonschema["properties"].items():
        var = ENV_PREFIX + name.upper()
        if (raw := environ.get(var)) is not None and raw != "":
            out[name] = _env_value(var, schema, raw)
    return out


def _env_value(var: str, schema: Mapping[str, Any], raw: str) -> Any:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    try:
        if kinds & {"object", "array"}:
            return json.loads(raw)
        if "integer" in kinds:
            return int(raw)
        if "number" in kinds:
            return float(raw)
    except ValueError:
        want = "JSON" if kinds & {"object", "array"} else "a number"
        raise UsageError(f"{var}: not {want}") from None
    if "boolean" in kinds:
        return raw.strip().lower() in ("true", "1", "yes", "on")
    return raw


def _store(config: Mapping[str, Any], command: str) -> Store:
    """The store the settings name. A SQLite file that is not there is an error naming where
    it was looked for (a command given no settings would otherwise report on a new, empty
    store); ``setup`` alone may create it."""
    try:
        url = store_url(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if url.startswith("sqlite:///") and command != "setup":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            given = "database_url" if config.get("database_url") else "the default database_url"
            raise UsageError(
                f"no store at {path} ({given}): run the pipeline first, or give the target's"
                " settings (--config FILE, TARGET_HEALTH_* variables, or meltano invoke"
                f" target-health:{command})"
            )
    return open_store(url)


def backtest_command(argv: list[str]) -> int:
    parser = _Parser(prog="target-health backtest", description=__doc__)
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--snapshot", type=dt.date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--model-version", help="default: the latest snapshot's model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    store = _store(_config(args.config), "backtest")
    latest = store.query(
        "SELECT model_version, as_of FROM scores ORDER BY as_of DESC, model_version LIMIT 1"
    )
    if not latest:
        print("target-health backtest: no scores stored yet", file=sys.stderr)
        return 2
    version = args.model_version or str(latest[0][0])
    snapshot = args.snapshot or (
        dt.date.fromisoformat(str(latest[0][1])) - dt.timedelta(days=args.horizon_days)
    )
    history: dict[str, list[tuple[dt.date, float | None, str | None]]] = {}
    churned: dict[str, dt.date | None] = {}
    for key, as_of, score, band, churned_on in store.stream(
        "SELECT account_key, as_of, score, band, churned_on FROM scores"
        " WHERE model_version = {p} ORDER BY account_key, as_of",
        (version,),
    ):
        history.setdefault(key, []).append((dt.date.fromisoformat(as_of), score, band))
        if churned_on:
            churned[key] = dt.date.fromisoformat(churned_on)
    cases = cases_at(history, churned, snapshot, args.horizon_days)
    if not cases:
        print(
            f"target-health backtest: no account of model {version} was scored on or before"
            f" {snapshot}; measure for longer, or pass --snapshot",
            file=sys.stderr,
        )
        return 2
    bands = [b["name"] for b in DEFAULT_MODEL["bands"]]
    seen = {c.band for c in cases}
    bands = [b for b in bands if b in seen] + sorted(seen - set(bands))
    result = backtest(cases, bands)
    if args.json:
        out = {"model_version": version, "snapshot": str(snapshot),
               "horizon_days": args.horizon_days, **asdict(result)}  # fmt: skip
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"model {version}, snapshot {snapshot}, horizon {args.horizon_days} days:"
        f" {result.cases} accounts, {result.churned} churned; AUC {result.auc}"
    )
    print(f"{'band':<10}{'accounts':>9}{'churned':>9}{'precision*':>12}{'recall*':>9}")
    for b in result.bands:
        print(
            f"{b.band:<10}{b.accounts:>9}{b.churned:>9}"
            f"{_pct(b.precision_at_or_worse):>12}{_pct(b.recall_at_or_worse):>9}"
        )
    print("* of the predictor 'this band or worse'")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def forget_command(argv: list[str]) -> int:
    from crm_connectors import registry
    from crm_connectors.pii import KeyRing

    from . import erasure

    parser = _Parser(prog="target-health forget")
    parser.add_argument("--config", help=CONFIG_HELP)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's e-mail address (matched by its token)")
    who.add_argument("--contact-id", help="CRM:ID, a contact's id in one CRM")
    who.add_argument("--token", help="the person's keyed e-mail token (tok:v1:...)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    config = _config(args.config)
    tokens: list[str] = []
    contact: tuple[str, str] | None = None
    if args.email is not None:
        try:
            keyring = KeyRing.from_settings(config)
        except ConfigError as exc:  # names the setting, never a key
            raise UsageError(f"--email needs the PII keys the tap used: {exc}") from None
        if not keyring.hmac_key_ids:
            raise UsageError("--email needs pii_hmac_keys, the keys the tap made tokens with")
        tokens = [
            t for k in keyring.hmac_key_ids if (t := keyring.token(args.email, "email", key_id=k))
        ]
    elif args.token is not None:
        tokens = [args.token.strip()]
    else:
        crm, _, rid = str(args.contact_id).partition(":")
        if crm not in registry.names() or not rid:
            raise UsageError(
                f"--contact-id: expected CRM:ID with CRM one of {', '.join(registry.names())}"
            )
        contact = (crm, rid)
    selector = "email" if args.email is not None else "token" if tokens else "contact-id"
    store = _store(config, "forget")
    with exclusive(store, "target-health forget", wait_seconds(config)):
        keys, streams = erasure.subject_keys(store, tokens=tokens, contact_id=contact)
        extra = {s: contact[1] for s in streams} if contact else {}
        # a contact known only to the quarantine is not taken again either
        keys |= {f"{s.replace('_', ':', 1)}:{rid}" for s, rid in extra.items()}
        done = erasure.erase(store, keys, selector, quarantine=extra)
    out = {"forgotten": selector, **done.counts()}
    if done.contacts:
        out["note"] = (
            "erase the person in the CRM too: the store will not take them again,"
            " but the CRM still holds them"
        )
    print(json.dumps(out, indent=2) if args.json else _text(out))
    return exits.OK


def writeback_command(command: str, argv: list[str]) -> int:
    from .writeback import plan as wb
    from .writeback.crm import writers

    parser = _Parser(prog=f"target-health {command}")
    parser.add_argument("--config", help=CONFIG_HELP)
    if command == "rollback":
        parser.add_argument("plan_id", nargs="?")
        parser.add_argument("--model-version", help="undo every applied plan of this model")
    elif command in ("approve", "reject"):
        parser.add_argument("plan_id")
    elif command == "show":
        parser.add_argument("plan_id")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument("--crm", help="only this CRM's changes")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if command == "rollback" and (args.plan_id is None) == (args.model_version is None):
        raise UsageError("give a plan id or --model-version, one of them")
    config = _config(args.config)
    store = _store(config, command)
    wb.ensure_tables(store)
    out: dict[str, Any]
    if command == "setup":
        reports = []
        for writer in writers(config):
            try:
                r = writer.ensure_fields()
            finally:
                writer.close()
            reports.append({"crm": r.crm, "created": r.created, "existing": r.existing,
                            "missing": r.missing, "message": r.message})  # fmt: skip
        out = {"setup": reports}
        print(json.dumps(out, indent=2) if args.json else _text(out))
        return exits.OK if all(not r["missing"] for r in reports) else exits.ATTENTION
    if command == "show":
        return show_plan(store, args.plan_id, args.format, args.crm)
    if command == "runs":
        rows = store.query(
            "SELECT plan_id, created_at, as_of, model_version, kind, status, counts"
            " FROM wb_plans ORDER BY created_at"
        )
        out = {"plans": [
            {"plan_id": p, "created_at": c, "as_of": a, "model_version": v, "kind": k,
             "status": s, **json.loads(n)}
            for p, c, a, v, k, s, n in rows
        ]}  # fmt: skip
    else:
        try:
            out = _writing_command(command, args, config, store)
        except StoreBusy as exc:
            print(f"target-health {command}: {exc}", file=sys.stderr)
            return exits.FAILED
        except KeyError as exc:  # an unknown plan id
            print(f"target-health {command}: {exc.args[0]}", file=sys.stderr)
            return exits.USAGE
    print(json.dumps(out, indent=2, default=str) if args.json else _text(out))
    # a CRM error or failed records (kept for the next run): 1; held by the brake or the gate: 3
    return exits.of_writeback(out, config)


#: The columns of ``show``, and the widest a table cell gets (a CSV or JSON has it all).
SHOW_COLUMNS = ("crm", "record", "account", "field", "before", "after", "state")
_CELL = 40


def show_plan(store: Store, plan_id: str, form: str, crm: str | None) -> int:
    """``target-health show PLAN_ID``: each change of the plan, the account it lands on (its
    name in the store), the field, its value before and the value planned, and its state
    (pending, held, applied, failed...)."""
    from .writeback import plan as wb

    found = store.query(
        "SELECT status, kind, as_of, model_version, counts FROM wb_plans WHERE plan_id = {p}",
        (plan_id,),
    )
    if not found:
        raise UsageError(f"no write-back plan '{plan_id}' (see: target-health runs)")
    status, kind, as_of, model, _ = found[0]
    items = [(i, state) for i, state in wb.load_items(store, plan_id) if crm in (None, i.crm)]
    names = store.account_names({i.account_key for i, _ in items})
    rows = [
        {"crm": i.crm, "record": i.record_id, "account": names.get(i.account_key, i.account_key),
         "field": i.field, "before": i.before, "after": i.after, "state": state}
        for i, state in items
    ]  # fmt: skip
    head = {"plan_id": plan_id, "status": status, "kind": kind, "as_of": as_of,
            "model_version": model}  # fmt: skip
    if form == "json":
        print(json.dumps({**head, "changes": rows}, indent=2, default=str))
    elif form == "csv":
        out = csv.DictWriter(sys.stdout, fieldnames=SHOW_COLUMNS, lineterminator="\n")
        out.writeheader()
        out.writerows({k: _cell(v, None) for k, v in r.items()} for r in rows)
    else:
        records = len({(r["crm"], r["record"]) for r in rows})
        print(f"plan {plan_id}: {kind}, {status}, as of {as_of}, model {model}:"
              f" {len(rows)} change(s) on {records} record(s)")  # fmt: skip
        cells = [[_cell(r[c], _CELL) for c in SHOW_COLUMNS] for r in rows]
        widths = [
            max([len(c), *(len(row[n]) for row in cells)]) for n, c in enumerate(SHOW_COLUMNS)
        ]
        for line in [list(SHOW_COLUMNS), *cells]:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    return exits.OK


def _cell(value: Any, width: int | None) -> str:
    """A value as a person reads it: empty for none, text as itself, numbers without a trailing
    .0; cut to ``width`` with an ellipsis in a table."""
    if value is None:
        text = ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        text = json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _writing_command(
    command: str, args: argparse.Namespace, config: Mapping[str, Any], store: Store
) -> dict[str, Any]:
    """The commands that write to the CRMs, each holding the store's write-back lock."""
    from .writeback import plan as wb
    from .writeback.crm import writers
    from .writeback.run import roll_back, roll_back_model, write_back

    if command in ("plan", "apply"):
        rules = wb.Governance.from_settings(config.get("writeback"))
        return write_back(store, config, rules, dry_run=command == "plan",
                          label=f"target-health {command}")  # fmt: skip
    what = args.plan_id or f"--model-version {args.model_version}"
    with exclusive(store, f"target-health {command} {what}", wait_seconds(config)):
        if command == "rollback" and args.plan_id is None:
            return roll_back_model(store, config, args.model_version)
        if command == "rollback":
            return roll_back(store, config, args.plan_id)
        decided = wb.decide(store, args.plan_id, command == "approve", writers(config))
        return {"plan_id": args.plan_id, command + "d": True, "calls": decided.calls,
                "applied": decided.applied, "failed": decided.failed}  # fmt: skip


def _text(out: Mapping[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in out.items())


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    try:
        if command == "backtest":
            return backtest_command(rest)
        if command == "forget":
            return forget_command(rest)
        return writeback_command(command, rest)
    except (UsageError, ConfigError, StoreVersionError) as exc:  # ConfigError: crm_connectors
        print(f"target-health {command}: {exc}", file=sys.stderr)
        return exits.USAGE
    except StoreBusy as exc:
        print(f"target-health {command}: {exc}", file=sys.stderr)
        return exits.FAILED
    except psycopg.OperationalError as exc:  # PostgreSQL down, refused, wrong password
        code, line = exits.of_store_error(exc)
        print(f"target-health {command}: {line}", file=sys.stderr)
        return code


def command_argv(argv: list[str]) -> list[str] | None:
    """``argv`` as a command takes it (the command first), or None when it names no command.
    ``meltano invoke target-health runs`` puts Meltano's ``--config FILE`` before the command."""
    if argv[:1] and argv[0] in COMMANDS:
        return argv
    if len(argv) >= 3 and argv[0] == "--config" and argv[2] in COMMANDS:
        return [argv[2], *argv[3:], "--config", argv[1]]
    if len(argv) >= 2 and argv[0].startswith("--config=") and argv[1] in COMMANDS:
        return [argv[1], *argv[2:], argv[0]]
    return None
