"""tap-crm keeps PII and secrets out of what it writes, as a process against the sandbox.

Given a sandbox with the three CRMs, when tap-crm runs with its default PII mode (encrypt), then
no value of a field the connectors mark as PII (``PII_FIELDS`` of each connector, and Intercom's
nested marks) appears in plain text in its output or logs: the fields are ``enc:v1:`` values that
decrypt, with the test keys and the stream/field binding, to what a ``keep`` run emits, and email
and phone fields carry join tokens. ``pii_fields`` switches single fields to ``hash`` (only the
token is left) or ``drop`` (the field leaves the record and the schema), and
``pii_default_mode: drop`` runs with no keys at all.

Given credentials that are canary strings, when tap-crm runs at DEBUG through retries, token
refreshes and failures, then no credential, issued access token or PII key (in any textual form)
appears in stdout, stderr or the state.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tapkit import PII_HMAC_KEYS, PII_KEYS, TapRun, run_tap, tap_config

from crm_connectors.hubspot.resources import PII_FIELDS as HUBSPOT_PII
from crm_connectors.intercom.resources import _NESTED_PII as INTERCOM_NESTED_PII
from crm_connectors.intercom.resources import PII_FIELDS as INTERCOM_PII
from crm_connectors.pii import ENC_PREFIX, TOK_PREFIX, KeyRing, PiiDecryptError, pii_fields
from crm_connectors.salesforce.resources import PII_FIELDS as SALESFORCE_PII
from crm_connectors.sandbox.app import Sandbox, SandboxConfig
from crm_connectors.sandbox.faults import Fault
from crm_connectors.sandbox.seed import seed
from crm_connectors.sandbox.store import LIVE, loads
from crm_connectors.sandbox.world import WorldSpec
from tap_crm.settings import CONFIG_SCHEMA

VENDORS = ("hubspot", "salesforce", "intercom")
TOKEN_SUFFIX = "__token"
TOKEN_KINDS = ("email", "phone")  # the kinds that get a join token by default (PII.md)
SECRET_SETTINGS = sorted(
    name for name, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")
)


def _marks() -> dict[str, dict[str, str]]:
    """Stream -> JSON pointer -> PII kind, from the connectors' own marks."""
    marks: dict[str, dict[str, str]] = {}
    for vendor, fields in (
        ("hubspot", HUBSPOT_PII),
        ("salesforce", SALESFORCE_PII),
        ("intercom", INTERCOM_PII),
    ):
        for obj, kinds in fields.items():
            marks[f"{vendor}_{obj}"] = {f"/{name}": kind for name, kind in kinds.items()}
    for obj, props in INTERCOM_NESTED_PII.items():
        marks.setdefault(f"intercom_{obj}", {}).update(pii_fields({"properties": props}))
    return marks


MARKS = _marks()
KEYRING = KeyRing.from_settings({"pii_keys": PII_KEYS, "pii_hmac_keys": PII_HMAC_KEYS}, {})

_ABSENT = object()


def _segments(pointer: str) -> list[str]:
    return pointer.split("/")[1:]


def _at(record: Mapping[str, Any], pointer: str) -> Any:
    """The value at ``pointer`` (marks have no ``*`` or escapes), or ``_ABSENT``."""
    node: Any = record
    for seg in _segments(pointer):
        if not isinstance(node, Mapping) or seg not in node:
            return _ABSENT
        node = node[seg]
    return node


def _container(record: Mapping[str, Any], pointer: str) -> Mapping[str, Any] | None:
    """The object holding the field at ``pointer`` (where its token goes), if any."""
    node: Any = record
    for seg in _segments(pointer)[:-1]:
        node = node.get(seg) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _schema_container(schema: Mapping[str, Any], pointer: str) -> Mapping[str, Any] | None:
    """The ``properties`` of the schema object holding the field at ``pointer``."""
    node: Any = schema
    for seg in _segments(pointer)[:-1]:
        node = (node.get("properties") or {}).get(seg) if isinstance(node, Mapping) else None
    props = node.get("properties") if isinstance(node, Mapping) else None
    return props if isinstance(props, Mapping) else None


def _without(record: Mapping[str, Any], pointers: Iterable[str]) -> dict[str, Any]:
    """A copy of ``record`` without the fields at ``pointers``."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(record))
    for pointer in pointers:
        container = _container(out, pointer)
        if isinstance(container, dict):
            container.pop(_segments(pointer)[-1], None)
    return out


def _key(run: TapRun, stream: str, record: Mapping[str, Any]) -> str:
    keys = next(m["key_properties"] for m in run.messages if m.get("stream") == stream)
    return ":".join(str(record[k]) for k in keys)


def _leaves(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)


def _json_text(value: str) -> str:
    """``value`` as it appears inside a JSON string in the tap's output (orjson escaping)."""
    return orjson.dumps(value).decode()[1:-1]


class Plaintext:
    """What a ``pii_default_mode: keep`` run emits: each marked field's value by stream, record
    and pointer, and the run's output with those fields taken out (the public part)."""

    def __init__(self, run: TapRun) -> None:
        self.run = run
        self.fields: dict[str, dict[str, dict[str, Any]]] = {}
        public: list[bytes] = []
        for m in run.messages:
            marks = MARKS.get(m.get("stream", ""), {})
            if m["type"] == "RECORD" and marks:
                key = _key(run, m["stream"], m["record"])
                found = {p: v for p in marks if (v := _at(m["record"], p)) is not _ABSENT}
                self.fields.setdefault(m["stream"], {})[key] = found
                m = {**m, "record": _without(m["record"], marks)}
            public.append(orjson.dumps(m))
        self.public_text = b"\n".join(public).decode()
        self.public_leaves = {s for m in public for s in _leaves(orjson.loads(m))}

    def values(self) -> set[str]:
        return {
            v
            for records in self.fields.values()
            for found in records.values()
            for v in found.values()
            if isinstance(v, str) and v
        }


#: Random ciphertext, tokens and ids in the output are base64url text. A given string of n
#: such characters turns up by chance in N characters of it with probability about N / 64**n:
#: for the ~1 MB an encrypted run writes and a few hundred names, n = 7 still gives ~1e-4
#: flaky failures, n = 8 about 1e-6. Shorter base64url-only values (first and last names,
#: "Call") are still checked, as whole JSON values (``assert_no_plaintext``).
MIN_SUBSTRING = 8
_BASE64URL = frozenset(string.ascii_letters + string.digits + "-_")


def assert_no_plaintext(plain: Plaintext, run: TapRun) -> int:
    """No marked value of ``plain`` in ``run``'s stdout or stderr; returns how many values were
    searched as substrings. A value that is also in the public part of the keep run (a city
    that is both a contact's address and a company's non-PII city) is not a finding."""
    searched = 0
    output = run.stdout + run.stderr
    secret_values = plain.values()
    for value in secret_values:
        text = _json_text(value)
        if text in plain.public_text:
            continue
        if len(value) < MIN_SUBSTRING and set(value) <= _BASE64URL:
            continue
        searched += 1
        # A bare bool, so that a failure does not print the value or the output.
        found = text in output or value in output
        assert not found, "a PII value is in the output (search it in the keep run's output)"
    # Every string of every message (records, schemas, state), as a whole value.
    leaves = {s for m in run.messages for s in _leaves(m)}
    leaked = len((secret_values - plain.public_leaves) & leaves)
    assert leaked == 0, f"{leaked} PII value(s) emitted as whole JSON strings"
    return searched


# -- module fixtures: one sandbox, one keep run ---------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    db = tmp_path_factory.mktemp("privacy") / "sandbox.sqlite"
    seed(db, WorldSpec(size=30, seed=7), VENDORS)
    box = Sandbox(SandboxConfig(db_path=db, port=0, vendors=VENDORS, rate_limits="off")).start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def plain(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Plaintext:
    run = run_tap(tmp_path_factory.mktemp("keep"), tap_config(sandbox, pii_default_mode="keep"))
    assert run.returncode == 0, run.stderr[-3000:]
    plaintext = Plaintext(run)
    # The keep run really is plain text: the sandbox's own HubSpot contact e-mails are in it.
    stored = {
        loads(row[0])["properties"].get("email")
        for row in sandbox.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'hubspot' AND object = 'contacts'"
            " AND state = ?",
            (LIVE,),
        )
    }
    emails = stored - {None, ""}
    missing = len(emails - {f.get("/email") for f in plaintext.fields["hubspot_contacts"].values()})
    assert emails and missing == 0, f"{missing} stored e-mail(s) not in the keep run"
    return plaintext


# -- 1. PII -------------------------------------------------------------------------------------


def test_encrypted_run_has_no_marked_value_in_plain_text_and_decrypts_back(
    sandbox: Sandbox, plain: Plaintext, tmp_path: Path
) -> None:
    # Given the plaintext of every marked field (the keep run)
    assert len(plain.values()) > 200
    # when the tap syncs the three CRMs with the default PII mode
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr[-3000:]
    # then none of those values is anywhere in stdout (records, schemas, state) or the logs
    searched = assert_no_plaintext(plain, run)
    assert searched >= 0.8 * len(plain.values()), "too few values were searched for"
    # and every marked field is an enc:v1:t1: value that decrypts, bound to its stream and
    # field, to the keep run's plaintext; e-mails and phones carry the same join token
    schemas = run.schemas
    checked = 0
    moved = 0  # ciphertexts tried under another field's binding
    for stream, marks in MARKS.items():
        if stream not in run.records:
            continue
        for pointer, kind in marks.items():
            props = _schema_container(schemas[stream], pointer)
            name = _segments(pointer)[-1]
            if props is None or name not in props:
                continue  # a mark for a field this CRM's sandbox does not have
            assert "encrypted" in props[name]["description"], (stream, pointer)
            if kind in TOKEN_KINDS:
                assert name + TOKEN_SUFFIX in props, (stream, pointer)
        for record in run.records[stream]:
            expected = plain.fields[stream][_key(run, stream, record)]
            for pointer, kind in marks.items():
                # (bare bools in the asserts below: a failure names the field, never a value)
                value = _at(record, pointer)
                assert (value is _ABSENT) == (pointer not in expected), (stream, pointer)
                if value is _ABSENT or value is None:
                    null_too = value is _ABSENT or expected[pointer] is None
                    assert null_too, (stream, pointer)
                    continue
                encrypted = isinstance(value, str) and value.startswith(f"{ENC_PREFIX}t1:")
                assert encrypted, (stream, pointer)
                same = KEYRING.decrypt(value, stream=stream, path=pointer) == expected[pointer]
                assert same, (stream, pointer)
                checked += 1
                if checked % 50 == 1:  # the binding: the same ciphertext in another field fails
                    with pytest.raises(PiiDecryptError):
                        KEYRING.decrypt(value, stream=stream, path=pointer + "x")
                    with pytest.raises(PiiDecryptError):
                        KEYRING.decrypt(value, stream=stream + "x", path=pointer)
                    moved += 1
                if kind in TOKEN_KINDS:
                    container = _container(record, pointer)
                    assert container is not None
                    token = container[_segments(pointer)[-1] + TOKEN_SUFFIX]
                    assert token == KEYRING.token(expected[pointer], kind), (stream, pointer)
    assert checked > 300 and moved > 5
    # and the columns the brief names are there
    for stream, fields in {
        "hubspot_contacts": ("email", "phone"),
        "salesforce_Contact": ("Email", "Phone"),
        "intercom_contacts": ("email", "phone"),
    }.items():
        for field in fields:
            assert field + TOKEN_SUFFIX in schemas[stream]["properties"], (stream, field)
            assert any(r.get(field + TOKEN_SUFFIX) for r in run.records[stream]), stream


def test_pii_fields_hash_leaves_only_a_token_and_drop_removes_the_field(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given HubSpot contacts with e-mails and first names
    sandbox = make_sandbox(vendors=("hubspot",), size=15)
    stored = {
        row[0]: loads(row[1])["properties"]
        for row in sandbox.store.conn().execute(
            "SELECT id, data FROM records WHERE vendor = 'hubspot' AND object = 'contacts'"
        )
    }
    # when the tap runs with e-mail hashed and first name dropped for that stream only
    overrides = {"hubspot_contacts": {"email": {"mode": "hash"}, "firstname": {"mode": "drop"}}}
    run = run_tap(tmp_path, tap_config(sandbox, pii_fields=overrides))
    assert run.returncode == 0, run.stderr[-3000:]
    schema = run.schemas["hubspot_contacts"]["properties"]
    records = run.records["hubspot_contacts"]
    assert records
    # then the hashed e-mail is only its token, in the schema and in every record
    assert "email" not in schema and "email__token" in schema
    # and the dropped first name is gone from both, with no token
    assert not {"firstname", "firstname__token"} & set(schema)
    for record in records:
        assert not {"email", "firstname", "firstname__token"} & set(record)
        email = stored[record["id"]].get("email")
        assert record["email__token"] == KEYRING.token(email, "email")
        if email:
            assert record["email__token"].startswith(f"{TOK_PREFIX}h1:")
    # and neither plaintext is anywhere in the output
    emails = {p["email"] for p in stored.values() if p.get("email")}
    first_names = {p["firstname"] for p in stored.values() if p.get("firstname")}
    assert emails and first_names
    found = sum(_json_text(e) in run.stdout for e in emails)
    assert found == 0, f"{found} e-mail(s) in the output"
    leaves = {s for m in run.messages for s in _leaves(m)}
    found = len(first_names & leaves)
    assert found == 0, f"{found} first name(s) in the output"
    # and fields left at the default are still encrypted (the override is per field)
    assert all(r["lastname"].startswith(ENC_PREFIX) for r in records if r.get("lastname"))
    # and the same marks on another stream keep their default (owners' e-mail is encrypted)
    owners = run.records["hubspot_owners"]
    assert owners and all(o["email"].startswith(ENC_PREFIX) for o in owners if o.get("email"))


def test_default_mode_drop_needs_no_keys_and_emits_no_marked_field(
    sandbox: Sandbox, plain: Plaintext, tmp_path: Path
) -> None:
    # Given a config with no PII keys at all (and none in the environment: tapkit strips
    # CRM_PII_*)
    config = {
        k: v
        for k, v in tap_config(sandbox, pii_default_mode="drop").items()
        if k not in ("pii_keys", "pii_hmac_keys")
    }
    # when the tap syncs the three CRMs
    run = run_tap(tmp_path, config)
    # then it succeeds
    assert run.returncode == 0, run.stderr[-3000:]
    # and no marked field, and no token, is in any schema or record
    for stream, marks in MARKS.items():
        if stream not in run.schemas:
            continue
        for pointer in marks:
            props = _schema_container(run.schemas[stream], pointer)
            name = _segments(pointer)[-1]
            assert props is None or not {name, name + TOKEN_SUFFIX} & set(props), (stream, name)
        for record in run.records.get(stream, ()):
            for pointer in marks:
                assert _at(record, pointer) is _ABSENT, (stream, pointer)
    for stream, schema in run.schemas.items():
        assert not [p for p in _leaves(schema) if p.endswith(TOKEN_SUFFIX)], stream
    # and none of the plaintext is in the output
    assert_no_plaintext(plain, run)
    # but the records are all there
    assert run.counts == plain.run.counts


# -- 2. secrets -----------------------------------------------------------------------------------

CANARY_CREDENTIALS: dict[str, dict[str, Any]] = {
    "hubspot": {
        "private_app_token": "pat-canary-hubspot-5c1f0e",
        "client_id": "canary-hubspot-client",
        "client_secret": "canary-hubspot-secret-9a7b",
        "refresh_token": "canary-hubspot-refresh-3e2d",
        "access_token_ttl": 1800,
    },
    "salesforce": {
        "client_id": "canary-salesforce-client",
        "client_secret": "canary-salesforce-secret-41c8",
        "refresh_token": "canary-salesforce-refresh-b7e0",
        "access_token_ttl": 7200,
    },
    "intercom": {"access_token": "canary-intercom-token-d29f"},
}
CANARY_ENC_KEY = bytes(range(40, 72))
CANARY_HMAC_KEY = bytes(range(140, 172))


def _key_forms(key: bytes) -> set[str]:
    """Every textual form a key may take: base64 and base64url, padded or not, and hex."""
    std = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return {std, url, std.rstrip("="), url.rstrip("="), key.hex()}


def canary_config(sandbox: Sandbox, *, hubspot_oauth: bool) -> dict[str, Any]:
    hs, sf, ic = (CANARY_CREDENTIALS[v] for v in VENDORS)
    config = tap_config(
        sandbox,
        hubspot_access_token=hs["private_app_token"],
        hubspot_search_requests_per_second=1000,
        salesforce_client_id=sf["client_id"],
        salesforce_client_secret=sf["client_secret"],
        salesforce_refresh_token=sf["refresh_token"],
        intercom_access_token=ic["access_token"],
        pii_keys=f"c1:{base64.b64encode(CANARY_ENC_KEY).decode()}",
        pii_hmac_keys=f"c1h:{base64.urlsafe_b64encode(CANARY_HMAC_KEY).decode()}",
    )
    if hubspot_oauth:  # OAuth wins over the private-app token when both are set
        config |= {
            "hubspot_client_id": hs["client_id"],
            "hubspot_client_secret": hs["client_secret"],
            "hubspot_refresh_token": hs["refresh_token"],
        }
    return config


def canaries(sandbox: Sandbox, config: Mapping[str, Any]) -> set[str]:
    """Every secret the run knew or was given: the sandbox's credentials, the config's secret
    settings (wrong ones too: a mistyped token is still close to the real one), each key's
    forms, and every access token the sandbox issued."""
    found = {
        str(value)
        for creds in CANARY_CREDENTIALS.values()
        for name, value in creds.items()
        if name not in ("client_id", "access_token_ttl")
    }
    for name in SECRET_SETTINGS:
        found.update(_leaves(config.get(name)) if isinstance(config.get(name), Mapping) else ())
        if isinstance(config.get(name), str):
            found.add(config[name])
    found |= _key_forms(CANARY_ENC_KEY) | _key_forms(CANARY_HMAC_KEY)
    issued = sandbox.store.conn().execute("SELECT token FROM tokens WHERE kind = 'access'")
    found |= {row[0] for row in issued}
    return {c for c in found if len(c) >= 8}  # key ids ("c1") are not secret


def assert_no_canary(run: TapRun, secrets: set[str]) -> None:
    state = orjson.dumps(run.last_state).decode()
    for where, text in (("stdout", run.stdout), ("stderr", run.stderr), ("state", state)):
        # Say how many and where, and only the first 8 characters of each (enough to tell
        # which canary it is; a bare count keeps pytest from printing the list).
        leaked = sorted(s[:8] for s in secrets if s in text)
        count = len(leaked)
        assert count == 0, f"{count} secret(s) in {where}, starting {leaked}"


DEBUG = {"LOGLEVEL": "DEBUG"}


@pytest.mark.parametrize("hubspot_oauth", [True, False], ids=["hubspot-oauth", "private-app"])
def test_canaries_stay_out_of_a_debug_run_through_retries_and_token_refreshes(
    make_sandbox: Any, tmp_path: Path, hubspot_oauth: bool
) -> None:
    # Given a sandbox whose credentials are canaries, that throttles HubSpot and Salesforce
    # once each, fails one Intercom call with a 503 (one retry per CRM: a jittered wait under
    # 1 s, or Salesforce's Retry-After of 1 s), and expires the OAuth access tokens once each
    # (a private-app token cannot be renewed: that 401 would fail the run)
    faults = [
        Fault("rate_limit", vendor="hubspot", path="/crm/v3/objects/*", calls=[1]),
        Fault("rate_limit", vendor="salesforce", path="/services/data/*", calls=[2],
              retry_after=1),
        Fault("expired_token", vendor="salesforce", path="/services/data/*", calls=[4]),
        Fault("server_error", vendor="intercom", path="/conversations/search", calls=[1]),
    ]  # fmt: skip
    if hubspot_oauth:
        faults.append(Fault("expired_token", vendor="hubspot", path="/crm/*", calls=[3]))
    sandbox = make_sandbox(size=15, credentials=CANARY_CREDENTIALS, faults=faults)
    config = canary_config(sandbox, hubspot_oauth=hubspot_oauth)
    # when the tap syncs everything at DEBUG
    run = run_tap(tmp_path, config, env=DEBUG)
    # then it succeeds through the retries and refreshes, and logged them
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.counts["hubspot_contacts"] and run.counts["salesforce_Contact"]
    stats = httpx.get(f"{sandbox.urls['admin']}/_sandbox/stats").json()["vendors"]
    fired = {v: stats[v]["faults"] for v in VENDORS}
    assert fired == {
        "hubspot": {"rate_limit": 1} | ({"expired_token": 1} if hubspot_oauth else {}),
        "salesforce": {"rate_limit": 1, "expired_token": 1},
        "intercom": {"server_error": 1},
    }
    renewed = run.stderr.count("token rejected, retrying once with a new one")
    assert renewed == (2 if hubspot_oauth else 1)
    assert run.stderr.count("; retry 1 of") == 3
    assert "| DEBUG" in run.stderr
    # and no canary, issued token or key form is in stdout, stderr or the state
    assert_no_canary(run, canaries(sandbox, config))


@pytest.mark.parametrize(
    ("setting", "wrong"),
    [
        ("intercom_access_token", "canary-wrong-intercom-token-77aa"),
        ("salesforce_client_secret", "canary-wrong-salesforce-secret-1f3e"),
        ("hubspot_refresh_token", "canary-wrong-hubspot-refresh-c0de"),
        # The mapping form KeyRing.from_settings accepts, where the tap's setting is a string:
        # a config error, whose message must not quote the key.
        ("pii_keys", {"c1": base64.b64encode(CANARY_ENC_KEY).decode()}),
    ],
    ids=["intercom-token", "salesforce-secret", "hubspot-refresh", "pii-keys-as-mapping"],
)
def test_canaries_stay_out_of_a_debug_run_that_fails_on_one_wrong_credential(
    make_sandbox: Any, tmp_path: Path, setting: str, wrong: Any
) -> None:
    # Given canary credentials and one wrong secret setting
    sandbox = make_sandbox(size=5, credentials=CANARY_CREDENTIALS)
    config = canary_config(sandbox, hubspot_oauth=True) | {setting: wrong}
    # when the tap runs at DEBUG
    run = run_tap(tmp_path, config, env=DEBUG)
    # then it fails naming the setting
    assert run.returncode != 0
    assert setting in run.stderr, run.stderr[-2000:]
    # and neither the right secrets nor the wrong one is in its output
    assert_no_canary(run, canaries(sandbox, config))
