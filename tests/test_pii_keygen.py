"""``crm-pii-keygen``: fresh keys, a rotation, and re-encryption of stored tap output.

Given tap-crm's output under one key ring, a rotation adds new keys and makes them active, and
``reencrypt`` moves every ciphertext and token of that output to them: the result decrypts to
the same values with the old keys removed, and its tokens are the ones a sync under the new keys
makes, so joins between old and new output hold.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tapkit import PII_HMAC_KEYS, PII_KEYS, run_tap, tap_config

from crm_connectors.pii import ENC_PREFIX, TOK_PREFIX, KeyRing
from tap_crm.keygen import reencrypt, rotate

OLD_ENV = {"TAP_CRM_PII_KEYS": PII_KEYS, "TAP_CRM_PII_HMAC_KEYS": PII_HMAC_KEYS}


def _env(settings: dict[str, str]) -> dict[str, str]:
    return {f"TAP_CRM_{k.upper()}": v for k, v in settings.items()}


def _values(messages: list[dict[str, Any]], ring: KeyRing) -> dict[tuple[str, str, str], Any]:
    """(stream, id, field) -> the decrypted value of every top-level ciphertext, or the token."""
    out: dict[tuple[str, str, str], Any] = {}
    for m in messages:
        if m["type"] != "RECORD":
            continue
        rid = str(m["record"].get("id"))
        for name, value in m["record"].items():
            if isinstance(value, str) and value.startswith(ENC_PREFIX):
                out[(m["stream"], rid, name)] = ring.decrypt(value, stream=m["stream"], path=name)
            elif isinstance(value, str) and value.startswith(TOK_PREFIX):
                out[(m["stream"], rid, name)] = value
    return out


def test_a_rotation_and_reencryption_move_stored_output_to_the_new_keys(
    make_sandbox: Any, tmp_path: Path
) -> None:
    # Given HubSpot synced under the old keys
    sandbox = make_sandbox(vendors=("hubspot",), size=20)
    config = tap_config(sandbox, hubspot_search_requests_per_second=1000)
    old = run_tap(tmp_path / "old", config)
    assert old.returncode == 0, old.stderr[-3000:]
    old_ring = KeyRing.from_settings({"pii_keys": PII_KEYS, "pii_hmac_keys": PII_HMAC_KEYS}, {})
    before = _values(old.messages, old_ring)
    assert any(k[2].endswith("__token") for k in before) and len(before) > 50
    # when the keys are rotated
    new = rotate("k2027", OLD_ENV)
    ring = KeyRing.from_settings(new, {})
    # then the ring holds the old keys and the new ones, the new ones active
    assert ring.active_key_id == "k2027" and ring.active_hmac_key_id == "k2027h"
    assert set(old_ring.key_ids) < set(ring.key_ids)
    assert set(old_ring.hmac_key_ids) < set(ring.hmac_key_ids)
    # and when the stored output is re-encrypted
    source = io.BytesIO("".join(json.dumps(m) + "\n" for m in old.messages).encode())
    sink = io.BytesIO()
    done = reencrypt(source, sink, _env(new))
    moved = [json.loads(line) for line in sink.getvalue().splitlines()]
    # then every ciphertext names the new key and decrypts, with the old keys removed, to the
    # value it held
    only_new = KeyRing.from_settings(
        {
            "pii_keys": new["pii_keys"].split(",")[0],
            "pii_hmac_keys": new["pii_hmac_keys"].split(",")[0],
        },
        {},
    )
    after = _values(moved, only_new)
    assert after.keys() == before.keys()
    ciphertexts = [k for k in before if not k[2].endswith("__token")]
    assert ciphertexts and all(after[k] == before[k] for k in ciphertexts)
    assert done.values == len(ciphertexts)
    # and every token is the one a sync under the new keys makes
    fresh = run_tap(tmp_path / "new", config | new)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    now = _values(fresh.messages, ring)
    tokens = [k for k in before if k[2].endswith("__token")]
    wrong = [
        k
        for k in tokens
        if after[k] != now.get(k) or not after[k].startswith(f"{TOK_PREFIX}k2027h:")
    ]
    assert not wrong, [(k, after[k][:20], str(now.get(k))[:20]) for k in wrong[:5]]
    assert done.tokens == len(tokens)
    # and the other messages pass unchanged
    assert [m["type"] for m in moved] == [m["type"] for m in old.messages]
    assert [m for m in moved if m["type"] != "RECORD"] == [
        m for m in old.messages if m["type"] != "RECORD"
    ]


def test_keygen_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "tap_crm.keygen"]
    clean = {"PATH": "/usr/bin:/bin"}
    # Given no keys in the environment, when rotating
    none = subprocess.run([*cmd, "rotate"], capture_output=True, text=True, env=clean, check=False)
    # then one line names the variables to set
    assert none.returncode == 2 and "set TAP_CRM_PII_KEYS" in none.stderr
    assert none.stderr.count("\n") == 1 and not none.stdout
    # and a new key id that the ring holds already is refused, without printing a key
    taken = subprocess.run([*cmd, "rotate", "--key-id", "t1"], capture_output=True, text=True,
                           env=clean | OLD_ENV, check=False)  # fmt: skip
    assert taken.returncode == 2 and "'t1'" in taken.stderr and not taken.stdout
    assert PII_KEYS.split(":")[1] not in taken.stderr
    # and a fresh pair still prints as before
    fresh = subprocess.run([*cmd, "--key-id", "k1"], capture_output=True, text=True, env=clean,
                           check=True)  # fmt: skip
    assert fresh.stdout.startswith("TAP_CRM_PII_KEYS=k1:")
