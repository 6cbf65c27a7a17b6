"""A connector from a distribution of its own (connectors/README.md, "Outside this repository"):
installed next to the plugins, it is found through its entry point, and both plugins offer its
settings and the tap reads it, with no change to this repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ACME = """
from crm_connectors.base import Bookmark, ConnectorSpec, Record
from crm_connectors.canonical import Row, source_fields
from crm_connectors.settings import setting

ROWS = [("w1", 1_780_000_000_000, "Widget One"), ("w2", 1_780_000_000_500, "Widget Two")]


class Widgets:
    name = "acme_widgets"
    primary_key = ("id",)
    replication_key = "updated_ms"

    def schema(self):
        props = {"id": {"type": "string"}, "updated_ms": {"type": "integer"},
                 "name": {"type": ["string", "null"]}}
        return {"type": "object", "properties": props}

    def read(self, bookmark):
        for id_, ms, name in ROWS:
            if bookmark.watermark is None or ms > bookmark.watermark:
                yield Record(id_, ms, {"id": id_, "updated_ms": ms, "name": name}), Bookmark(ms)


class Connector:
    vendor = "acme"

    def resources(self):
        return [Widgets()]

    def close(self):
        pass


def account(marks, r):
    return [Row("account", source_fields("acme", "widgets", r["id"], r, r["updated_ms"]))]


SPEC = ConnectorSpec(
    name="acme",
    label="Acme CRM",
    settings={"acme_token": setting("string", "Acme's API token.", secret=True)},
    configured=lambda config: bool(config.get("acme_token")),
    needs="acme_token",
    credentials=(("acme_token",),),
    connect=lambda config, **kw: Connector(),
    mapping={"acme_widgets": account},
)
"""


def _install(root: Path) -> dict[str, str]:
    """An installed distribution, as pip leaves it: the package and its dist-info."""
    (root / "acme_crm").mkdir()
    (root / "acme_crm" / "__init__.py").write_text(ACME)
    info = root / "crm_connector_acme-0.1.dist-info"
    info.mkdir()
    metadata = "Metadata-Version: 2.1\nName: crm-connector-acme\nVersion: 0.1\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text("[crm_connectors]\nacme = acme_crm:SPEC\n")
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _about(module: str, env: dict[str, str]) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-m", module, "--about", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    return set(json.loads(run.stdout)["settings"]["properties"])


def test_a_connector_installed_from_elsewhere_is_found_offered_and_read(tmp_path: Path) -> None:
    # Given a distribution registering the connector "acme", installed beside the plugins
    env = _install(tmp_path)
    # then the registry finds it with the connectors of this repository
    names = subprocess.run(
        [sys.executable, "-c", "from crm_connectors import registry; print(*registry.names())"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert "acme" in names and len(names) > 1
    # and both plugins offer its settings
    assert "acme_token" in _about("tap_crm.tap", env)
    assert "acme_token" in _about("target_health.target", env)
    # and the tap reads its stream when its setting is given
    (tmp_path / "config.json").write_text(json.dumps({"crms": ["acme"], "acme_token": "t"}))
    run = subprocess.run(
        [sys.executable, "-m", "tap_crm.tap", "--config", str(tmp_path / "config.json")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert [(m["stream"], m["record"]["id"]) for m in messages if m["type"] == "RECORD"] == [
        ("acme_widgets", "w1"),
        ("acme_widgets", "w2"),
    ]
    assert records[1]["name"] == "Widget Two"
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert "acme_widgets" in json.dumps(states[-1])
