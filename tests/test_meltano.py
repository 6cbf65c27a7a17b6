"""tap-crm and target-health as ordinary Meltano plugins: `meltano install`, then `meltano invoke`
and `meltano run tap-crm target-health` in the `dev` environment of the project's own
meltano.yml, against a sandbox.

Given the project's meltano.yml (plugins installed by Meltano into their own virtualenvs), when
the dev environment's tap runs with the sandbox's ports and PII keys from the environment, then
it syncs every CRM with PII encrypted, and no credential shows up in Meltano's logs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tapkit import MELTANO, PII_HMAC_KEYS, PII_KEYS, parse_messages, run_meltano

from crm_connectors import registry
from crm_connectors.sandbox.emulators import client_settings, vendors
from target_health.cli import COMMANDS
from target_health.store import open_store

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(MELTANO is None, reason="meltano is not installed (dev extras)")


_meltano = run_meltano


def _dev_config(kind: str, name: str) -> dict[str, Any]:
    """The dev environment's config of one plugin in meltano.yml."""
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    dev = next(e for e in project["environments"] if e["name"] == "dev")
    plugin = next(p for p in dev["config"]["plugins"][kind] if p["name"] == name)
    return dict(plugin["config"])


def _sandbox_env(sandbox: Any, kind: str, name: str) -> dict[str, str]:
    """The settings pointing a plugin at ``sandbox`` (free ports) that meltano.yml's dev
    environment does not already hold (its credentials are the sandbox's: they stay)."""
    dev, prefix = _dev_config(kind, name), name.upper().replace("-", "_")
    return {
        f"{prefix}_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in client_settings(sandbox.urls).items()
        if dev.get(key) != value
    }


def _tap_env(sandbox: Any) -> dict[str, str]:
    """The dev environment's tap settings pointed at ``sandbox``, PII test keys."""
    return _sandbox_env(sandbox, "extractors", "tap-crm") | {
        "TAP_CRM_PII_KEYS": PII_KEYS,
        "TAP_CRM_PII_HMAC_KEYS": PII_HMAC_KEYS,
    }


def test_the_dev_environment_maps_the_sandbox_fields_as_the_sandbox_does() -> None:
    # Given the dev environment's tap settings and the sandbox's own (its seeded fields)
    dev = _dev_config("extractors", "tap-crm")
    sandbox = client_settings({crm: "http://127.0.0.1:1" for crm in vendors()})
    mappings = {k: v for k, v in sandbox.items() if k.endswith("_field_mapping")}
    # then `meltano run` in dev maps every CRM's fields where the sandbox keeps them
    assert set(mappings) == {f"{crm}_field_mapping" for crm in vendors()}
    assert {k: dev.get(k) for k in mappings} == mappings


@pytest.fixture(scope="module")
def installed() -> None:
    done = _meltano("install")
    assert done.returncode == 0, done.stderr[-3000:]


def test_meltano_invoke_dev_environment_syncs_the_sandbox(installed: None, make_sandbox) -> None:
    # Given a sandbox on free ports and the dev environment's settings overridden by environment
    sandbox = make_sandbox(vendors=vendors(), size=20)
    env = _tap_env(sandbox)
    # when Meltano invokes the tap
    done = _meltano("--environment", "dev", "invoke", "tap-crm", env=env)
    # then it syncs records from every CRM
    assert done.returncode == 0, done.stderr[-3000:]
    messages = parse_messages(done.stdout)
    crms = {m["stream"].split("_")[0] for m in messages if m["type"] == "RECORD"}
    assert crms == set(vendors())
    # with PII encrypted under the key from the environment
    contact = next(
        m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "hubspot_contacts"
    )
    assert contact["email"].startswith("enc:v1:t1:")
    # and none of the credentials meltano.yml holds, nor the keys, in Meltano's logs
    secret_settings = {
        key for spec in registry.specs() for key, schema in spec.settings.items()
        if schema.get("secret")
    }  # fmt: skip
    dev = _dev_config("extractors", "tap-crm")
    secrets = [str(v) for k, v in dev.items() if k in secret_settings]
    assert len(secrets) >= len(vendors())
    secrets += [PII_KEYS.split(":", 1)[1], PII_HMAC_KEYS.split(":", 1)[1]]
    for secret in secrets:
        assert secret not in done.stderr


def test_meltano_run_tap_crm_target_health_fills_the_store_and_resumes(
    installed: None, make_sandbox, tmp_path: Path
) -> None:
    # Given a sandbox, a store in a temporary directory and Meltano's state kept there too
    sandbox = make_sandbox(vendors=vendors(), size=20)
    db = tmp_path / "health.sqlite"
    env = _tap_env(sandbox) | _sandbox_env(sandbox, "loaders", "target-health")
    env |= {
        "TARGET_HEALTH_DATABASE_URL": f"sqlite:///{db}",
        "TARGET_HEALTH_MAX_INVALID_SHARE": "0.01",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
    }
    # when Meltano runs the pipeline
    first = _meltano("--environment", "dev", "run", "tap-crm", "target-health", env=env)
    # then it succeeds and the store holds the canonical model of every CRM
    assert first.returncode == 0, first.stderr[-3000:]
    store = open_store(f"sqlite:///{db}")
    counts = store.counts()
    assert counts["account"] > 0 and counts["deal"] > 0 and counts["nps_response"] > 0
    crms = {row[0] for row in store.query("SELECT DISTINCT crm FROM records")}
    assert crms == set(vendors())
    # and Meltano kept the tap's state, so a second run resumes and stores nothing new
    state = _meltano("state", "list", env=env)
    assert "tap-crm-to-target-health" in state.stdout + state.stderr
    # and the dev environment wrote the scores back into every CRM
    first_run = json.loads(store.query("SELECT counts FROM runs")[0][0])
    assert first_run["writeback"]["records"] > 0 and not first_run["writeback"]["failed"]
    calls = first_run["writeback"]["calls"]
    assert set(calls) == set(vendors()) and all(calls.values()), calls
    # (the second run as a scheduler starts it: the project's job, under the same state)
    second = _meltano("--environment", "dev", "run", "health-sync", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    runs = [json.loads(c) for (c,) in store.query("SELECT counts FROM runs ORDER BY started_at")]
    assert len(runs) == 2
    # the second run reads only what changed (the records write-back touched) and, with the
    # same scores, plans and writes nothing
    assert runs[1]["received"] < runs[0]["received"]
    assert runs[1]["writeback"]["items"] == 0 and not any(runs[1]["writeback"]["calls"].values())
    # and write-back is operated where the pipeline lives, on the project's settings (no config
    # file of its own): the plugin's commands, and the plain `invoke target-health runs`
    plan = _meltano("--environment", "dev", "invoke", "target-health:plan", "--json", env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = json.loads(plan.stdout)
    assert planned["items"] == 0 and planned["plan_id"]  # nothing changed since the last run
    for how in (["target-health:runs"], ["target-health", "runs"]):
        listed = _meltano("--environment", "dev", "invoke", *how, "--json", env=env)
        assert listed.returncode == 0, listed.stderr[-3000:]
        plans = json.loads(listed.stdout)["plans"]
        assert len(plans) == 3 and plans[-1]["plan_id"] == planned["plan_id"], plans
        assert plans[-1]["status"] == "planned"  # the dry run: saved, nothing written


def test_the_target_plugin_offers_every_command_of_target_health() -> None:
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    target = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-health")
    # each command runs as itself, so `meltano invoke target-health:X ARGS` is `target-health X`
    assert {name: c["args"] for name, c in target["commands"].items()} == {c: c for c in COMMANDS}
    assert all(c["description"] for c in target["commands"].values())


def test_the_project_schedules_the_pipeline_as_a_job() -> None:
    # Given the project's meltano.yml, when Meltano lists its schedules
    done = _meltano("schedule", "list", "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    (schedule,) = json.loads(done.stdout)["schedules"]["job"]
    # then one runs the pipeline's job on a cron interval
    assert schedule["job"] == {"name": "health-sync", "tasks": ["tap-crm target-health"]}
    assert len(schedule["cron_interval"].split()) == 5


def test_the_prod_environment_keeps_no_secret_and_takes_the_crms_from_variables() -> None:
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    prod = next(e for e in project["environments"] if e["name"] == "prod")
    sensitive = {
        s["name"] for kind in ("extractors", "loaders") for p in project["plugins"][kind]
        for s in p["settings"] if s.get("sensitive")
    }  # fmt: skip
    # Given the prod environment: no secret nor CRM host in meltano.yml, write-back governed
    for kind in ("extractors", "loaders"):
        for plugin in prod["config"]["plugins"][kind]:
            config = plugin["config"]
            assert not set(config) & sensitive, plugin["name"]
            assert not [k for k in config if k.endswith(("_base_url", "_login_url"))]
    # when a CRM's credentials are variables (as a scheduler or secrets manager sets them)
    env = {"TAP_CRM_SALESFORCE_CLIENT_ID": "prod-client-id", "TAP_CRM_HUBSPOT_ACCESS_TOKEN": "x"}
    done = _meltano("--environment", "prod", "config", "print", "target-health", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads(done.stdout)
    # then target-health has them too, the secret masked, and write-back on with its brake
    assert config["salesforce_client_id"] == "prod-client-id"
    assert config["hubspot_access_token"] != "x"
    assert config["writeback"]["enabled"] is True
    assert config["writeback"]["max_band_change_share"] > 0
