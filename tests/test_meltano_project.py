"""A stranger's Meltano project adopts the plugins as the README says: a new project outside this
repository (`meltano init`), both plugins added from their Hub-format definitions
(`meltano add --from-ref plugins/...`), installed by Meltano from this repository's git URL at
its commit (``CRM_HEALTH_SYNC_SOURCE`` in the project's .env; no editable checkout), the CRM
settings given once, as tap-crm's (target-health's default to them), then
`meltano run tap-crm target-health` and `meltano invoke target-health:plan` against a sandbox.

What the git URL installs is the repository's HEAD: CI runs on a clean checkout, where HEAD is
the code under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tapkit import MELTANO, run_meltano

from crm_connectors.sandbox.emulators import client_settings, vendors
from target_health.store import open_store

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = {
    "extractor": ROOT / "plugins" / "extractors" / "tap-crm--crm-health-sync.yml",
    "loader": ROOT / "plugins" / "loaders" / "target-health--crm-health-sync.yml",
}


def _head() -> str:
    """The repository's commit, or "" when it is no git checkout."""
    git = shutil.which("git")
    if not git:
        return ""
    done = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


HEAD = _head()
pytestmark = [
    pytest.mark.skipif(MELTANO is None, reason="meltano is not installed (dev extras)"),
    pytest.mark.skipif(not HEAD, reason="the repository is no git checkout: no git URL to install"),
]


def _env_line(name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{name}='{text}'\n"


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done


def test_a_new_meltano_project_adds_installs_and_runs_both_plugins(
    tmp_path: Path, make_sandbox: Any
) -> None:
    # Given a new Meltano project outside the repository, the plugins' source its git URL
    _ok(run_meltano("init", "acme", "--no_usage_stats", cwd=tmp_path))
    project = tmp_path / "acme"
    dotenv = project / ".env"
    dotenv.write_text(_env_line("CRM_HEALTH_SYNC_SOURCE", f"git+file://{ROOT}@{HEAD}"))
    # when both plugins are added from their definitions (Meltano installs them)
    for kind, definition in DEFINITIONS.items():
        name = yaml.safe_load(definition.read_text())["name"]
        _ok(run_meltano("add", "--plugin-type", kind, name, "--from-ref", str(definition),
                        cwd=project, timeout=900))  # fmt: skip
    # then the project holds each definition, every setting with its label and description
    added = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]
    (tap,) = added["extractors"]
    (target,) = added["loaders"]
    assert tap["pip_url"] == target["pip_url"] == "${CRM_HEALTH_SYNC_SOURCE}"
    for plugin in (tap, target):
        assert all(s.get("label") and s.get("description") for s in plugin["settings"])
    assert set(target["commands"]) >= {"plan", "apply", "approve", "rollback", "runs"}

    # Given a sandbox, and the CRM settings set once, as tap-crm's, in .env: a secret with
    # `meltano config set` (Meltano keeps it there), another with `--store dotenv`, the rest
    # written there; new PII keys from the plugin's crm-pii-keygen; write-back on
    sandbox = make_sandbox(vendors=vendors(), size=20)
    crm = client_settings(sandbox.urls)
    for store, name in (
        ([], "hubspot_access_token"),
        (["--store", "dotenv"], "salesforce_client_id"),
    ):
        _ok(run_meltano("config", "set", *store, "tap-crm", name, crm.pop(name), cwd=project))
    keygen = project / ".meltano" / "extractors" / "tap-crm" / "venv" / "bin" / "crm-pii-keygen"
    keys = _ok(subprocess.run([keygen], capture_output=True, text=True, check=False)).stdout
    assert sorted(line.split("=")[0] for line in keys.split()) == [
        "TAP_CRM_PII_HMAC_KEYS", "TAP_CRM_PII_KEYS"
    ]  # fmt: skip
    with dotenv.open("a") as env:
        env.write(keys)
        for name, value in crm.items():
            env.write(_env_line(f"TAP_CRM_{name.upper()}", value))
        env.write(_env_line("TARGET_HEALTH_WRITEBACK", {"enabled": True}))
    assert "TAP_CRM_HUBSPOT_ACCESS_TOKEN=" in dotenv.read_text()
    assert "pat-sandbox-hubspot" not in (project / "meltano.yml").read_text()
    # when the pipeline runs
    _ok(run_meltano("run", "tap-crm", "target-health", cwd=project, timeout=900))
    # then the project's store (the default database_url, under output/) holds every CRM
    store = open_store(f"sqlite:///{project / 'output' / 'health.sqlite'}")
    crms = {row[0] for row in store.query("SELECT DISTINCT crm FROM records")}
    assert crms == set(vendors())
    assert store.counts()["account"] > 0
    # and target-health wrote the scores back to every CRM with tap-crm's credentials
    (counts,) = store.query("SELECT counts FROM runs")[0]
    writeback = json.loads(counts)["writeback"]
    assert writeback["records"] > 0 and not writeback["failed"], writeback
    assert set(writeback["calls"]) == set(vendors()) and all(writeback["calls"].values())
    # and write-back is operated from the project: a plan of what would change (nothing now)
    plan = _ok(run_meltano("invoke", "target-health:plan", "--json", cwd=project))
    planned = json.loads(plan.stdout)
    assert planned["plan_id"] and planned["items"] == 0, planned
