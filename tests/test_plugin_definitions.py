"""The plugins' Meltano Hub-format definitions (plugins/), the project's meltano.yml and the
plugins' own ``--about`` say the same: every setting with its kind, label and description, the
capabilities, the credential sets that connect each CRM, target-health's commands.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from crm_connectors import registry
from target_health.cli import COMMANDS

yaml = pytest.importorskip("yaml")
tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "plugins" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def test_the_definitions_and_meltano_yml_are_what_the_plugins_about_says() -> None:
    # Given the files as checked in, when they are generated again from the plugins' --about
    for path, text in generate.render().items():
        # then each is unchanged (else: run `python plugins/generate.py`)
        assert path.read_text(encoding="utf-8") == text, f"{path} is out of step"


def test_each_definition_names_a_command_the_distribution_installs() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for kind, plugin in generate.PLUGINS.items():
        found = yaml.safe_load(
            generate.HERE.joinpath(kind, f"{plugin['name']}--crm-health-sync.yml").read_text()
        )
        assert found["executable"] in scripts
        assert scripts[found["executable"]].startswith(plugin["module"] + ":")


def test_every_credential_set_connects_its_crm_and_only_credentials_are_in_them() -> None:
    # Given each CRM's credential sets (Meltano's settings_group_validation)
    for spec in registry.specs():
        assert spec.credentials, spec.name
        for group in spec.credentials:
            # then each is enough to connect the CRM, and names only its settings
            assert spec.configured(dict.fromkeys(group, "x")), (spec.name, group)
            assert set(group) <= set(spec.settings), (spec.name, group)
            # and none is a subset of another (each says what is needed, no more)
            assert not any(set(o) < set(group) for o in spec.credentials), group


def test_meltano_yml_declares_the_plugins_as_their_definitions_do() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    for kind, plugin in generate.PLUGINS.items():
        found = yaml.safe_load(
            generate.HERE.joinpath(kind, f"{plugin['name']}--crm-health-sync.yml").read_text()
        )
        (ours,) = (p for p in project["plugins"][kind] if p["name"] == plugin["name"])
        for key in ("namespace", "executable", "capabilities"):
            assert ours[key] == found[key], (plugin["name"], key)
        assert [s["name"] for s in ours["settings"]] == [s["name"] for s in found["settings"]]
        for mine, theirs in zip(ours["settings"], found["settings"], strict=True):
            assert mine["kind"] == theirs["kind"] and mine.get("sensitive") == theirs.get(
                "sensitive"
            )
        assert ours.get("commands") == found.get("commands")
        if kind == "loaders":
            assert set(found["commands"]) == set(COMMANDS)
            # the CRM settings default to tap-crm's variables: one credential set feeds both
            shared = {s["name"]: s.get("value") for s in found["settings"]}
            for spec in registry.specs():
                for name in spec.settings:
                    if name in shared:
                        assert shared[name] == f"$TAP_CRM_{name.upper()}", name
