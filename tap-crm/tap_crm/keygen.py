"""``crm-pii-keygen``: PII keys for tap-crm, their rotation, and re-encryption of stored output.

- ``crm-pii-keygen [--key-id ID]``: a fresh encryption key and HMAC key, as the environment
  assignments tap-crm's settings take.
- ``crm-pii-keygen rotate [--key-id ID]``: the key ring in the environment (``TAP_CRM_PII_*``,
  else ``CRM_PII_*``) with a new key of each kind added and made active; the old keys stay, so
  everything encrypted or tokenised under them still decrypts and matches.
- ``crm-pii-keygen reencrypt < old.jsonl > new.jsonl``: Singer messages (tap-crm's output, kept
  by another target or an archive) with every ``enc:v1:`` value under an older key encrypted
  again under the active key, and the ``<field>__token`` beside it made again under the active
  HMAC key (the kind from the stream's SCHEMA, ``x-pii``). Once nothing stored names an old key,
  it can be removed from the ring (PII.md, "Keys and rotation").

Keys go to stdout only, for the user to store in a secrets manager or ``.env``; nothing is
written to disk or logged. Errors are one line naming the variable, never a key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

import orjson

from crm_connectors.errors import ConfigError
from crm_connectors.pii import (
    ENC_PREFIX,
    SETTING_ACTIVE,
    SETTING_ACTIVE_HMAC,
    SETTING_HMAC_KEYS,
    SETTING_KEYS,
    TOK_PREFIX,
    KeyRing,
    PiiDecryptError,
    new_key,
    new_key_settings,
    schema_kind,
)

SETTINGS = (SETTING_KEYS, SETTING_ACTIVE, SETTING_HMAC_KEYS, SETTING_ACTIVE_HMAC)


class KeygenError(Exception):
    """A wrong environment, argument or input: one line, exit 2."""


TOKEN_SUFFIX = "__token"  # noqa: S105 - a field-name suffix (pii.PiiPolicy's default)


def _env_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The PII settings as tap-crm sees them in the environment: ``TAP_CRM_PII_*`` (Meltano's
    names for the settings), else ``CRM_PII_*`` (KeyRing's own fallback)."""
    out: dict[str, str] = {}
    for setting, variable in SETTINGS:
        value = env.get(f"TAP_CRM_{setting.upper()}") or env.get(variable)
        if value:
            out[setting] = value
    return out


def _ring(env: Mapping[str, str]) -> tuple[KeyRing, dict[str, str]]:
    settings = _env_settings(env)
    if not settings.get(SETTING_KEYS[0]):
        raise KeygenError("no PII keys: set TAP_CRM_PII_KEYS (or CRM_PII_KEYS)")
    return KeyRing.from_settings(settings, {}), settings


def rotate(key_id: str, env: Mapping[str, str]) -> dict[str, str]:
    """The settings of the ring in ``env`` with new keys ``key_id`` / ``key_id``h, active."""
    ring, settings = _ring(env)
    hmac_id = f"{key_id}h"
    if key_id in ring.key_ids or hmac_id in ring.hmac_key_ids:
        raise KeygenError(f"key id {key_id!r} is in the ring already; pass another --key-id")
    out = {
        SETTING_KEYS[0]: f"{key_id}:{new_key()},{settings[SETTING_KEYS[0]]}",
        SETTING_ACTIVE[0]: key_id,
    }
    old_hmac = settings.get(SETTING_HMAC_KEYS[0])
    out[SETTING_HMAC_KEYS[0]] = f"{hmac_id}:{new_key()}" + (f",{old_hmac}" if old_hmac else "")
    out[SETTING_ACTIVE_HMAC[0]] = hmac_id
    KeyRing.from_settings(out, {})  # the new ring is valid
    return out


class Reencryptor:
    """Re-encrypts the records of a stream of Singer messages (see the module doc)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.enc_prefix = f"{ENC_PREFIX}{ring.active_key_id}:"
        active_hmac = ring.active_hmac_key_id
        self.tok_prefix = f"{TOK_PREFIX}{active_hmac}:" if active_hmac else None
        self.kinds: dict[str, dict[str, str]] = {}  # stream -> field -> PII kind
        self.values = 0
        self.tokens = 0
        self.records = 0

    def message(self, msg: MutableMapping[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "SCHEMA":
            props = (msg.get("schema") or {}).get("properties") or {}
            self.kinds[str(msg.get("stream"))] = {
                name: found for name, p in props.items() if (found := schema_kind(p))
            }
        elif kind == "RECORD" and isinstance(msg.get("record"), MutableMapping):
            stream = str(msg.get("stream"))
            if self._walk(msg["record"], stream, ()):
                self.records += 1

    def _walk(self, node: MutableMapping[str, Any], stream: str, path: tuple[str, ...]) -> bool:
        changed = False
        for name, value in list(node.items()):
            here = (*path, name)
            if isinstance(value, MutableMapping):
                changed |= self._walk(value, stream, here)
            elif (
                isinstance(value, str)
                and value.startswith(ENC_PREFIX)
                and not value.startswith(self.enc_prefix)
            ):
                plain = self.ring.decrypt(value, stream=stream, path=here)
                node[name] = self.ring.encrypt(plain, stream=stream, path=here)
                self.values += 1
                changed = True
                self._retoken(node, name, plain, stream, path)
        return changed

    def _retoken(
        self,
        node: MutableMapping[str, Any],
        name: str,
        plain: Any,
        stream: str,
        path: tuple[str, ...],
    ) -> None:
        token = node.get(name + TOKEN_SUFFIX)
        kind = self.kinds.get(stream, {}).get(name) if not path else None
        if (
            self.tok_prefix is None
            or kind is None
            or not isinstance(token, str)
            or token.startswith(self.tok_prefix)
        ):
            return
        node[name + TOKEN_SUFFIX] = self.ring.token(plain, kind)
        self.tokens += 1


def reencrypt(source: IO[bytes], sink: IO[bytes], env: Mapping[str, str]) -> Reencryptor:
    ring, _ = _ring(env)
    work = Reencryptor(ring)
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise KeygenError(f"input line {number}: not JSON") from None
        if isinstance(msg, dict):
            try:
                work.message(msg)
            except PiiDecryptError as exc:
                raise KeygenError(f"input line {number}: {exc}") from None
        sink.write(orjson.dumps(msg) + b"\n")
    return work


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="crm-pii-keygen",
        description="New PII keys, their rotation, and re-encryption of tap-crm's output.",
    )
    parser.add_argument("command", nargs="?", choices=("new", "rotate", "reencrypt"),
                        default="new")  # fmt: skip
    parser.add_argument(
        "--key-id",
        default=dt.date.today().strftime("k%Y%m%d"),
        help="id of the new keys (default: k<today>); a rotation adds a key with a new id",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "reencrypt":
            done = reencrypt(sys.stdin.buffer, sys.stdout.buffer, env)
            sys.stderr.write(
                f"crm-pii-keygen reencrypt: {done.values} value(s) and {done.tokens} token(s)"
                f" in {done.records} record(s) moved to the active keys\n"
            )
            return 0
        values = (
            rotate(args.key_id, env) if args.command == "rotate" else new_key_settings(args.key_id)
        )
    except (KeygenError, ConfigError) as exc:
        sys.stderr.write(f"crm-pii-keygen {args.command}: {exc}\n")
        return 2
    for name, value in values.items():
        sys.stdout.write(f"TAP_CRM_{name.upper()}={value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
