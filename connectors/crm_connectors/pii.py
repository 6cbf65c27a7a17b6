"""PII protection inside the tap: field encryption, join tokens, a key ring and log redaction.

Fields marked as PII (emails, names, phones, addresses, free text) are transformed before a
record leaves the tap, per stream and field, by one of four modes:

- ``encrypt`` - AES-256-GCM ciphertext ``enc:v1:<key_id>:<base64url(nonce||ciphertext||tag)>``,
  bound to (stream, field) by associated data so a value cannot be moved to another field;
- ``hash``    - only a keyed HMAC token ``tok:v1:<key_id>:<base64url(hmac)>`` beside the field,
  the plaintext is removed;
- ``drop``    - the field is removed;
- ``keep``    - plaintext, only when a field's configuration says so explicitly.

``encrypt`` and ``keep`` may add the token too (``<field>__token``). Tokens are deterministic for
the same normalised value under the same HMAC key, whatever the CRM, stream or field, so the
target can link people across CRMs without plaintext. Formats, the normalisation (versioned with
the ``v1`` in both prefixes) and key rotation are described in ``PII.md`` next to this module.

Errors (in the tree of ``crm_connectors.errors``)::

    CrmError
    ├── ConfigError
    │   └── PiiConfigError   bad keys or policy; names the setting, never its value
    └── SkippableError
        └── PiiDecryptError  a ciphertext that does not authenticate, or an unknown key id

No Singer dependency: the tap calls ``PiiPolicy.apply`` per record and ``transform_schema`` once
per stream, and installs ``RedactingFilter`` on its loggers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_connectors.errors import ConfigError, SkippableError
from crm_connectors.secrets import SENSITIVE_PARAMS, Secret

__all__ = [
    "ENC_PREFIX",
    "TOKEN_BYTES",
    "TOK_PREFIX",
    "FieldRule",
    "KeyRing",
    "Mode",
    "PiiConfigError",
    "PiiDecryptError",
    "PiiKind",
    "PiiPolicy",
    "RedactingFilter",
    "StreamPlan",
    "install_redaction",
    "new_key",
    "normalise",
    "pii_fields",
    "transform_schema",
]

ENC_PREFIX = "enc:v1:"
TOK_PREFIX = "tok:v1:"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce, the size GCM is specified for (NIST SP 800-38D §5.2.1.1)
# HMAC-SHA256 truncated to 128 bits: collisions need ~2**64 values (birthday bound), far beyond any
# CRM; NIST SP 800-107r1 §5.3.3 allows truncation to >= 64 bits. Shorter tokens keep the store lean.
TOKEN_BYTES = 16
MIN_HMAC_KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_AAD_PREFIX = b"crm-pii\x00v1\x00"
_TOK_PREFIX_BYTES = b"crm-pii-tok\x00v1\x00"

# (setting, environment variable): settings win, the environment is the fallback.
SETTING_KEYS = ("pii_keys", "CRM_PII_KEYS")
SETTING_ACTIVE = ("pii_active_key", "CRM_PII_ACTIVE_KEY")
SETTING_HMAC_KEYS = ("pii_hmac_keys", "CRM_PII_HMAC_KEYS")
SETTING_ACTIVE_HMAC = ("pii_active_hmac_key", "CRM_PII_ACTIVE_HMAC_KEY")


class PiiConfigError(ConfigError):
    """The PII keys or policy are misconfigured. ``setting`` names what to fix (a setting such
    as ``pii_keys``, an environment variable such as ``CRM_PII_KEYS``, or a policy entry
    ``pii.<stream>.<path>``); the message never contains a key or a field value."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message, setting=setting)


class PiiDecryptError(SkippableError):
    """A ciphertext could not be decrypted: tampered, moved to another field, truncated, or made
    with a key this ring does not hold. The message names the stream, field and key id only."""


class PiiKind(str, Enum):
    """What a PII field holds; chooses the token normaliser and the default mode."""

    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    ADDRESS = "address"
    FREE_TEXT = "free_text"


class Mode(str, Enum):
    """What happens to a PII field before the record leaves the tap."""

    ENCRYPT = "encrypt"
    HASH = "hash"
    DROP = "drop"
    KEEP = "keep"


# Defaults per kind: always encrypt (plaintext never by default); tokens for the join keys.
DEFAULT_MODE: Mapping[PiiKind, Mode] = {kind: Mode.ENCRYPT for kind in PiiKind}
DEFAULT_TOKEN: Mapping[PiiKind, bool] = {
    PiiKind.EMAIL: True,
    PiiKind.PHONE: True,
    PiiKind.NAME: False,
    PiiKind.ADDRESS: False,
    PiiKind.FREE_TEXT: False,
}


# ---------------------------------------------------------------------------------------------
# Normalisation (v1). Changing any of these changes every token: bump the version with it.
# ---------------------------------------------------------------------------------------------

_PHONE_EXT_RE = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*\Z")
_NON_DIGIT_RE = re.compile(r"[^0-9]+")
_ADDRESS_PUNCT_RE = re.compile(r"[,.;:#/\\()\-]+")


def _norm_email(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().lower()


def _norm_phone(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    text = _PHONE_EXT_RE.sub("", text)
    if text.isascii():
        digits = _NON_DIGIT_RE.sub("", text)
    else:  # other scripts' decimal digits (Arabic-Indic, Devanagari...) count as digits too
        digits = "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())
    if not text.startswith("+") and text.startswith("00"):
        digits = digits[2:]  # 00 is the ITU international call prefix, the same as "+"
    return "+" + digits if digits else ""


def _norm_name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _norm_address(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_ADDRESS_PUNCT_RE.sub(" ", folded).split())


def _norm_free_text(text: str) -> str:
    return text


_NORMALISERS: Mapping[PiiKind, Callable[[str], str]] = {
    PiiKind.EMAIL: _norm_email,
    PiiKind.PHONE: _norm_phone,
    PiiKind.NAME: _norm_name,
    PiiKind.ADDRESS: _norm_address,
    PiiKind.FREE_TEXT: _norm_free_text,
}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def normalise(kind: PiiKind | str, value: Any) -> str:
    """The v1 normal form of ``value`` for ``kind``, the input to the token HMAC.

    email: NFC, trimmed, lower-cased. phone: NFKC, extension removed, decimal digits only with a
    leading ``+`` (a leading ``00`` counts as ``+``). name: NFKC, case-folded, whitespace collapsed.
    address: as name, with ``, . ; : # / \\ ( ) -`` treated as spaces. free_text: unchanged.
    Non-strings become their decimal (numbers) or compact sorted-JSON text first.
    """
    return _NORMALISERS[PiiKind(kind)](_as_text(value))


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh random 32-byte key, base64url-encoded: what to put after ``<key_id>:``."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def new_key_settings(key_id: str) -> dict[str, str]:
    """A fresh encryption key and HMAC key as the values of ``pii_keys`` and ``pii_hmac_keys``
    (the HMAC key's id is ``key_id`` + ``h``)."""
    return {
        SETTING_KEYS[0]: f"{key_id}:{new_key()}",
        SETTING_HMAC_KEYS[0]: f"{key_id}h:{new_key()}",
    }


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional. Raises ValueError without the input."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5) as ASCII text."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _parse_keys(setting: str, raw: Any, min_bytes: int, exact: bool) -> dict[str, bytes]:
    """``"id:base64,id:base64"`` or a mapping ``{id: base64}`` -> ``{id: bytes}``."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, Secret):
        raw = raw.reveal()
    if isinstance(raw, Mapping):
        pairs = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, str):
        for n, entry in enumerate((e for e in raw.split(",") if e.strip()), start=1):
            key_id, sep, material = entry.strip().partition(":")
            if not sep:
                raise PiiConfigError(setting, f"entry #{n} is not '<key_id>:<base64 key>'")
            pairs.append((key_id.strip(), material))
    else:
        raise PiiConfigError(setting, "must be a string '<id>:<base64>,...' or a mapping")
    keys: dict[str, bytes] = {}
    for n, (key_id, material) in enumerate(pairs, start=1):
        if not _KEY_ID_RE.match(key_id):
            raise PiiConfigError(setting, f"entry #{n}: key id must be 1-32 of [A-Za-z0-9_-]")
        if key_id in keys:
            raise PiiConfigError(setting, f"key id {key_id!r} appears twice")
        if isinstance(material, Secret):
            material = material.reveal()
        if not isinstance(material, str):
            raise PiiConfigError(setting, f"key {key_id!r} must be a base64 string")
        try:
            decoded = _b64decode(material)
        except ValueError:
            raise PiiConfigError(setting, f"key {key_id!r} is not valid base64") from None
        if (exact and len(decoded) != min_bytes) or len(decoded) < min_bytes:
            need = f"exactly {min_bytes}" if exact else f"at least {min_bytes}"
            raise PiiConfigError(
                setting, f"key {key_id!r} decodes to {len(decoded)} bytes, needs {need}"
            )
        keys[key_id] = decoded
    if not keys:
        raise PiiConfigError(setting, "no keys given")
    return keys


def _pick_active(setting: str, keys: Mapping[str, bytes], active: str | None) -> str:
    if active is None or not str(active).strip():
        if len(keys) == 1:
            return next(iter(keys))
        raise PiiConfigError(setting, "several keys configured: say which one is active")
    active = str(active).strip()
    if active not in keys:
        raise PiiConfigError(setting, f"active key id {active!r} is not among the configured keys")
    return active


class KeyRing:
    """Named AES-256 keys (one active for encryption, all usable for decryption) and named HMAC
    keys (one active for new tokens, all known for verification).

    ``repr`` and ``str`` show key ids only. Build it with ``from_settings`` (settings first, then
    the environment) or directly from ``{key_id: bytes}`` mappings.
    """

    __slots__ = ("_active", "_active_hmac", "_aead", "_hmac", "_secret_texts")

    def __init__(
        self,
        encryption_keys: Mapping[str, bytes],
        active_key: str | None = None,
        hmac_keys: Mapping[str, bytes] | None = None,
        active_hmac_key: str | None = None,
    ) -> None:
        for key_id, key in encryption_keys.items():
            if not _KEY_ID_RE.match(key_id):
                raise PiiConfigError("encryption_keys", "key ids must be 1-32 of [A-Za-z0-9_-]")
            if len(key) != KEY_BYTES:
                raise PiiConfigError("encryption_keys", f"key {key_id!r} must be 32 bytes")
        for key_id, key in (hmac_keys or {}).items():
            if not _KEY_ID_RE.match(key_id):
                raise PiiConfigError("hmac_keys", "key ids must be 1-32 of [A-Za-z0-9_-]")
            if len(key) < MIN_HMAC_KEY_BYTES:
                raise PiiConfigError("hmac_keys", f"key {key_id!r} must be at least 32 bytes")
        if not encryption_keys:
            raise PiiConfigError("encryption_keys", "no keys given")
        reused = set(encryption_keys.values()) & set((hmac_keys or {}).values())
        if reused:
            raise PiiConfigError("hmac_keys", "an HMAC key must not reuse an encryption key")
        self._active = _pick_active("active_key", encryption_keys, active_key)
        self._aead = {key_id: AESGCM(bytes(key)) for key_id, key in encryption_keys.items()}
        self._hmac = {key_id: bytes(key) for key_id, key in (hmac_keys or {}).items()}
        self._active_hmac = (
            _pick_active("active_hmac_key", self._hmac, active_hmac_key) if self._hmac else None
        )
        # Every textual form a key may take in config or logs, for the log redaction filter.
        texts: set[str] = set()
        for key in [*encryption_keys.values(), *self._hmac.values()]:
            std = base64.b64encode(bytes(key)).decode("ascii")
            url = base64.urlsafe_b64encode(bytes(key)).decode("ascii")
            texts.update({std, url, std.rstrip("="), url.rstrip("="), bytes(key).hex()})
        self._secret_texts = tuple(sorted(texts))

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> KeyRing:
        """Read ``pii_keys``/``pii_active_key``/``pii_hmac_keys``/``pii_active_hmac_key`` from
        ``settings``, each falling back to ``CRM_PII_KEYS``/``CRM_PII_ACTIVE_KEY``/
        ``CRM_PII_HMAC_KEYS``/``CRM_PII_ACTIVE_HMAC_KEY`` in ``environ`` (default ``os.environ``).

        Keys are ``"<key_id>:<base64>,..."`` (or a mapping in settings); encryption keys decode to
        exactly 32 bytes, HMAC keys to at least 32. HMAC keys are optional (no tokens without).
        """
        settings = settings or {}
        env = os.environ if environ is None else environ

        def pick(names: tuple[str, str]) -> tuple[str, Any]:
            setting, var = names
            value = settings.get(setting)
            if value is not None and value != "":
                return setting, value
            value = env.get(var)
            # Errors name where the value came from; when unset, both places it may be set.
            return (var if value else f"{setting} or {var}"), value

        keys_name, keys_raw = pick(SETTING_KEYS)
        if keys_raw is None or keys_raw == "":
            raise PiiConfigError(
                f"{SETTING_KEYS[0]} or {SETTING_KEYS[1]}", "no PII encryption keys configured"
            )
        keys = _parse_keys(keys_name, keys_raw, KEY_BYTES, exact=True)
        active_name, active_raw = pick(SETTING_ACTIVE)
        active = _pick_active(active_name, keys, active_raw)
        hmac_name, hmac_raw = pick(SETTING_HMAC_KEYS)
        hmac_keys: dict[str, bytes] = {}
        active_hmac: str | None = None
        if hmac_raw is not None and hmac_raw != "":
            hmac_keys = _parse_keys(hmac_name, hmac_raw, MIN_HMAC_KEY_BYTES, exact=False)
            if set(hmac_keys.values()) & set(keys.values()):
                raise PiiConfigError(hmac_name, "an HMAC key must not reuse an encryption key")
            active_hmac_name, active_hmac_raw = pick(SETTING_ACTIVE_HMAC)
            active_hmac = _pick_active(active_hmac_name, hmac_keys, active_hmac_raw)
        return cls(keys, active, hmac_keys, active_hmac)

    # -- introspection (ids only) --------------------------------------------------------------

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def active_hmac_key_id(self) -> str | None:
        return self._active_hmac

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._aead)

    @property
    def hmac_key_ids(self) -> tuple[str, ...]:
        return tuple(self._hmac)

    def secret_strings(self) -> tuple[str, ...]:
        """The base64/hex forms of every key, to register with ``RedactingFilter``."""
        return self._secret_texts

    def __repr__(self) -> str:
        return (
            f"KeyRing(keys={list(self._aead)}, active={self._active!r}, "
            f"hmac_keys={list(self._hmac)}, active_hmac={self._active_hmac!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("KeyRing cannot be pickled (it would copy key material)")

    # -- encryption ----------------------------------------------------------------------------

    def encryptor(self, stream: str, path: str | Sequence[str]) -> Callable[[Any], str]:
        """A function encrypting one value for ``stream``/``path`` with the active key."""
        aad = _aad(self._active, stream, _pointer(path))
        encrypt = self._aead[self._active].encrypt
        prefix = f"{ENC_PREFIX}{self._active}:"
        take_nonce = _NONCES.take

        def enc(value: Any) -> str:
            nonce = take_nonce()
            return prefix + _b64url(nonce + encrypt(nonce, _to_plain(value), aad))

        return enc

    def encrypt(self, value: Any, *, stream: str, path: str | Sequence[str]) -> str:
        """Encrypt one JSON value (its type is restored by ``decrypt``)."""
        return self.encryptor(stream, path)(value)

    def decrypt(self, ciphertext: str, *, stream: str, path: str | Sequence[str]) -> Any:
        """Decrypt an ``enc:v1:`` value made for exactly this ``stream`` and ``path``, with any
        key in the ring. For authorised use only (the target, tests)."""
        pointer = _pointer(path)
        where = f"stream {stream!r} field {pointer!r}"
        if not isinstance(ciphertext, str) or not ciphertext.startswith(ENC_PREFIX):
            raise PiiDecryptError(f"{where}: not an {ENC_PREFIX} value")
        key_id, sep, payload = ciphertext[len(ENC_PREFIX) :].partition(":")
        if not sep or key_id not in self._aead:
            raise PiiDecryptError(f"{where}: key id {key_id[:32]!r} is not in the key ring")
        try:
            blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            raise PiiDecryptError(f"{where}: payload is not base64url") from None
        if len(blob) < NONCE_BYTES + 16:
            raise PiiDecryptError(f"{where}: payload too short")
        try:
            plain = self._aead[key_id].decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(key_id, stream, pointer)
            )
        except InvalidTag:
            raise PiiDecryptError(
                f"{where}: authentication failed with key {key_id!r}"
                " (tampered, or encrypted for another stream or field)"
            ) from None
        return _from_plain(plain)

    # -- tokens --------------------------------------------------------------------------------

    def tokenizer(self, kind: PiiKind | str) -> Callable[[Any], str | None]:
        """A function returning the token of one value of ``kind`` (``None`` for null/empty)."""
        if self._active_hmac is None:
            raise PiiConfigError(
                f"{SETTING_HMAC_KEYS[0]} or {SETTING_HMAC_KEYS[1]}", "tokens need an HMAC key"
            )
        return self._tokenizer(self._active_hmac, PiiKind(kind))

    def _tokenizer(self, key_id: str, kind: PiiKind) -> Callable[[Any], str | None]:
        key = self._hmac[key_id]
        norm = _NORMALISERS[kind]
        head = _TOK_PREFIX_BYTES + kind.value.encode("ascii") + b"\x00"
        prefix = f"{TOK_PREFIX}{key_id}:"
        mac_of = _hmac_sha256(key)

        def tok(value: Any) -> str | None:
            if value is None:
                return None
            text = norm(value if type(value) is str else _as_text(value))
            if not text:
                return None
            mac = mac_of(head + text.encode("utf-8", "surrogatepass"))
            return prefix + _b64url(mac[:TOKEN_BYTES])

        return tok

    def token(self, value: Any, kind: PiiKind | str, *, key_id: str | None = None) -> str | None:
        """The token of ``value`` under the active (or the named) HMAC key."""
        if key_id is None:
            return self.tokenizer(kind)(value)
        if key_id not in self._hmac:
            raise PiiConfigError("hmac_keys", f"HMAC key id {key_id!r} is not in the key ring")
        return self._tokenizer(key_id, PiiKind(kind))(value)

    def token_matches(self, value: Any, kind: PiiKind | str, token: str) -> bool:
        """Whether ``token`` is the token of ``value``, under whichever HMAC key it names."""
        if not isinstance(token, str) or not token.startswith(TOK_PREFIX):
            return False
        key_id = token[len(TOK_PREFIX) :].partition(":")[0]
        if key_id not in self._hmac:
            return False
        expected = self._tokenizer(key_id, PiiKind(kind))(value)
        return expected is not None and hmac.compare_digest(expected, token)


class _NoncePool:
    """Random 96-bit GCM nonces from the OS CSPRNG, drawn 4,096 at a time: one system call per
    block instead of one per value, with the same randomness. Each nonce is handed out once
    (under a lock), and a forked child drops the block it inherited, so parent and child never
    share a nonce."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._at = 0

    def take(self) -> bytes:
        with self._lock:
            if self._at >= len(self._block):
                self._block = os.urandom(NONCE_BYTES * self.BLOCK)
                self._at = 0
            at = self._at
            self._at = at + NONCE_BYTES
        return self._block[at : at + NONCE_BYTES]

    def reset(self) -> None:
        self._block = b""
        self._at = 0


_NONCES = _NoncePool()
os.register_at_fork(after_in_child=_NONCES.reset)


def _hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 (RFC 2104) under ``key`` with its two padded-key hash states computed once:
    ``hmac.digest`` sets up an OpenSSL HMAC context on every call, about 3x the cost."""
    if len(key) > 64:  # SHA-256's block size
        key = hashlib.sha256(key).digest()
    padded = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def mac(message: bytes) -> bytes:
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    return mac


def _aad(key_id: str, stream: str, pointer: str) -> bytes:
    return b"\x00".join((_AAD_PREFIX + key_id.encode(), stream.encode(), pointer.encode()))


def _to_plain(value: Any) -> bytes:
    # One type byte, authenticated with the rest: "s" UTF-8 text, "j" any other JSON value.
    if type(value) is str:
        return b"s" + value.encode("utf-8", "surrogatepass")
    return b"j" + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def _from_plain(plain: bytes) -> Any:
    body = plain[1:].decode("utf-8", "surrogatepass")
    return body if plain[:1] == b"s" else json.loads(body)


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def _segments(path: str | Sequence[str]) -> tuple[str, ...]:
    """``properties.email`` (dotted) or ``/properties/email`` (JSON Pointer, RFC 6901) or a
    sequence of segments -> segments. ``*`` matches every item of a list (not as last segment)."""
    if not isinstance(path, str):
        segments = tuple(path)
    elif path.startswith("/"):
        segments = tuple(s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/"))
    else:
        segments = tuple(path.split("."))
    if not segments or any(s == "" or "\x00" in s for s in segments):
        raise ValueError("empty path segment")
    return segments


def _pointer(path: str | Sequence[str]) -> str:
    """The canonical JSON Pointer of a path: what the associated data binds to."""
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in _segments(path))


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One PII field of a stream. ``mode``/``token`` left ``None`` take the kind's defaults;
    ``keep`` is never a default."""

    path: str
    kind: PiiKind
    mode: Mode | None = None
    token: bool | None = None


@dataclass(frozen=True, slots=True)
class _Resolved:
    segments: tuple[str, ...]
    pointer: str
    kind: PiiKind
    mode: Mode
    token: bool


_Leaf = Callable[[dict[str, Any], str, Any], None]


class StreamPlan:
    """The precompiled transformation of one stream: a tree of container keys down to leaf
    operations, built once, so ``apply`` does no policy lookups per record."""

    __slots__ = ("_tree", "rules", "stream", "token_suffix")

    def __init__(
        self,
        stream: str,
        rules: tuple[_Resolved, ...],
        keyring: KeyRing | None,
        token_suffix: str,
    ) -> None:
        self.stream = stream
        self.rules = rules
        self.token_suffix = token_suffix
        root: dict[str, Any] = {}
        for rule in rules:
            node = root
            for seg in rule.segments[:-1]:
                child = node.setdefault(seg, {})
                if not isinstance(child, dict):
                    raise PiiConfigError(
                        f"pii.{stream}.{rule.pointer}", "is inside another PII field"
                    )
                node = child
            last = rule.segments[-1]
            if last in node:
                raise PiiConfigError(
                    f"pii.{stream}.{rule.pointer}", "overlaps another PII field rule"
                )
            node[last] = _leaf(rule, stream, keyring, token_suffix)
        self._tree = _freeze(root)

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A transformed copy of ``record``; containers off the PII paths are shared, not copied."""
        return _apply(self._tree, record)


def _freeze(node: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    out: list[tuple[str, Any, Any]] = []
    for key, child in node.items():
        if isinstance(child, dict):
            out.append((key, None, _freeze(child)))
        else:
            out.append((key, child, None))
    return tuple(out)


def _apply(tree: tuple[tuple[str, Any, Any], ...], src: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(src)
    for key, leaf, sub in tree:
        if key == "*":
            continue  # only meaningful for lists; handled by the parent
        if key not in out:
            continue
        value = out[key]
        if leaf is not None:
            leaf(out, key, value)
        elif isinstance(value, dict):
            out[key] = _apply(sub, value)
        elif isinstance(value, list):
            star = next((s for k, _, s in sub if k == "*"), None)
            if star is not None:
                out[key] = [_apply(star, v) if isinstance(v, dict) else v for v in value]
    return out


def _leaf(rule: _Resolved, stream: str, keyring: KeyRing | None, suffix: str) -> _Leaf:
    if keyring is None and (rule.mode in (Mode.ENCRYPT, Mode.HASH) or rule.token):
        raise PiiConfigError(
            f"{SETTING_KEYS[0]} or {SETTING_KEYS[1]}",
            f"{stream} field {rule.pointer} needs a key (mode {rule.mode.value}"
            f"{', with a token' if rule.token else ''}) and none is configured; or set its mode"
            " to drop or keep",
        )
    if keyring is None:
        return _drop if rule.mode is Mode.DROP else _keep
    tok = keyring.tokenizer(rule.kind) if rule.token or rule.mode is Mode.HASH else None
    mode = rule.mode
    if mode is Mode.ENCRYPT:
        enc = keyring.encryptor(stream, rule.pointer)
        if tok is None:

            def encrypt(out: dict[str, Any], key: str, value: Any) -> None:
                if value is not None:
                    out[key] = enc(value)

            return encrypt

        def encrypt_token(out: dict[str, Any], key: str, value: Any) -> None:
            out[key + suffix] = tok(value)
            if value is not None:
                out[key] = enc(value)

        return encrypt_token
    if mode is Mode.HASH:
        assert tok is not None

        def hash_(out: dict[str, Any], key: str, value: Any) -> None:
            del out[key]
            out[key + suffix] = tok(value)

        return hash_
    if mode is Mode.DROP:
        return _drop
    if tok is None:
        return _keep

    def keep_token(out: dict[str, Any], key: str, value: Any) -> None:
        out[key + suffix] = tok(value)

    return keep_token


def _drop(out: dict[str, Any], key: str, value: Any) -> None:
    del out[key]


def _keep(out: dict[str, Any], key: str, value: Any) -> None:
    return None


RuleSpec = FieldRule | PiiKind | str | Mapping[str, Any]


class PiiPolicy:
    """Which fields of which streams are PII and what happens to each.

    ``streams`` maps stream -> path -> rule, where a rule is a ``FieldRule``, a kind
    (``"email"``), or a mapping ``{"kind": "phone", "mode": "hash", "token": true}``. Mode
    defaults to ``encrypt``; ``keep`` (plaintext) only when a field's rule names it.
    """

    def __init__(
        self,
        keyring: KeyRing | None,
        streams: Mapping[str, Mapping[str, RuleSpec]],
        *,
        token_suffix: str = "__token",  # noqa: S107 - a field-name suffix, not a credential
    ) -> None:
        if not token_suffix:
            raise PiiConfigError("pii.token_suffix", "must not be empty")
        self.keyring = keyring
        self.token_suffix = token_suffix
        # Tokens are optional: without an HMAC key the kinds' default tokens are off (a rule
        # that asks for one, or mode hash, still fails, naming the setting to fill).
        default_token = keyring is not None and keyring.active_hmac_key_id is not None
        self._rules: dict[str, tuple[_Resolved, ...]] = {
            stream: tuple(
                _resolve(stream, path, spec, default_token) for path, spec in fields.items()
            )
            for stream, fields in streams.items()
        }
        self._plans = {
            stream: StreamPlan(stream, rules, keyring, token_suffix)
            for stream, rules in self._rules.items()
        }
        self._identity = StreamPlan("", (), keyring, token_suffix)

    @classmethod
    def from_schemas(
        cls,
        keyring: KeyRing | None,
        schemas: Mapping[str, Mapping[str, Any]],
        overrides: Mapping[str, Mapping[str, RuleSpec]] | None = None,
        *,
        token_suffix: str = "__token",  # noqa: S107 - a field-name suffix, not a credential
    ) -> PiiPolicy:
        """Rules from ``"x-pii": "<kind>"`` annotations in each stream's JSON Schema, then
        ``overrides`` (stream -> path -> rule) on top, e.g. to set a mode or to ``keep``."""
        streams: dict[str, dict[str, RuleSpec]] = {}
        for stream, schema in schemas.items():
            found: dict[str, RuleSpec] = dict(pii_fields(schema))
            for path, spec in (overrides or {}).get(stream, {}).items():
                canon = _pointer(path)
                previous = next((p for p in found if _pointer(p) == canon), None)
                merged: RuleSpec = spec
                if previous is not None:
                    kind = found.pop(previous)
                    if isinstance(spec, Mapping) and "kind" not in spec:
                        merged = {"kind": kind, **spec}
                found[path] = merged
            streams[stream] = found
        for stream in set(overrides or {}) - set(schemas):
            streams[stream] = dict((overrides or {})[stream])
        return cls(keyring, streams, token_suffix=token_suffix)

    def plan(self, stream: str) -> StreamPlan:
        """The precompiled plan of ``stream`` (streams without PII rules pass through)."""
        return self._plans.get(stream, self._identity)

    def apply(self, stream: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with the stream's PII fields transformed; the input is not modified."""
        return self._plans.get(stream, self._identity).apply(record)

    def transform_schema(self, stream: str, schema: Mapping[str, Any]) -> dict[str, Any]:
        return transform_schema(schema, self.plan(stream))

    def reveal(self, stream: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Decrypt the encrypted fields of a transformed record (authorised use: target, tests).
        Hashed and dropped fields cannot come back."""
        out = _deep_copy_json(record)
        for rule in self._rules.get(stream, ()):
            if rule.mode is Mode.ENCRYPT:
                for container, key in _locate(out, rule.segments):
                    value = container.get(key)
                    if isinstance(value, str) and self.keyring is not None:
                        container[key] = self.keyring.decrypt(
                            value, stream=stream, path=rule.pointer
                        )
        return out

    def __repr__(self) -> str:
        counts = {stream: len(rules) for stream, rules in self._rules.items()}
        return f"PiiPolicy(fields={counts}, keyring={self.keyring!r})"


def _resolve(stream: str, path: str, spec: RuleSpec, default_token: bool = True) -> _Resolved:
    where = f"pii.{stream}.{path}"
    try:
        segments = _segments(path)
    except ValueError:
        raise PiiConfigError(where, "path has an empty segment") from None
    if segments[-1] == "*":
        raise PiiConfigError(where, "'*' may only select list items inside a path, not a leaf")
    try:
        if isinstance(spec, FieldRule):
            kind, mode, token = PiiKind(spec.kind), spec.mode, spec.token
        elif isinstance(spec, PiiKind | str):
            kind, mode, token = PiiKind(spec), None, None
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"kind", "mode", "token"}
            if unknown:
                raise PiiConfigError(where, f"unknown keys {sorted(unknown)}")
            if "kind" not in spec:
                raise PiiConfigError(where, "needs a 'kind'")
            kind = PiiKind(spec["kind"])
            mode = Mode(spec["mode"]) if spec.get("mode") is not None else None
            token = spec.get("token")
            if token is not None and not isinstance(token, bool):
                raise PiiConfigError(where, "'token' must be true or false")
        else:
            raise PiiConfigError(where, "must be a kind, a mapping or a FieldRule")
    except ValueError as exc:
        if isinstance(exc, PiiConfigError):
            raise
        kinds = ", ".join(k.value for k in PiiKind)
        modes = ", ".join(m.value for m in Mode)
        raise PiiConfigError(where, f"kind must be one of {kinds}; mode one of {modes}") from None
    mode = DEFAULT_MODE[kind] if mode is None else Mode(mode)
    if token is None:
        token = mode is Mode.HASH or (
            default_token and DEFAULT_TOKEN[kind] and mode is not Mode.DROP
        )
    if mode is Mode.DROP and token:
        raise PiiConfigError(where, "a dropped field cannot carry a token (use mode 'hash')")
    if mode is Mode.HASH and token is False:
        raise PiiConfigError(where, "mode 'hash' is the token; it cannot have token: false")
    return _Resolved(segments, _pointer(segments), kind, mode, bool(token) or mode is Mode.HASH)


def pii_fields(
    schema: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterable[tuple[str, str]]:
    """``(json_pointer, kind)`` for every property annotated ``"x-pii": "<kind>"``; descends into
    ``properties`` and array ``items`` (as ``*``)."""
    kind = schema.get("x-pii")
    if kind is not None and prefix:
        yield _pointer(prefix), str(kind)
        return
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            yield from pii_fields(sub, (*prefix, name))
    items = schema.get("items")
    if isinstance(items, Mapping) and prefix:
        yield from pii_fields(items, (*prefix, "*"))


def _locate(record: Any, segments: tuple[str, ...]) -> Iterable[tuple[dict[str, Any], str]]:
    if not segments:
        return
    head, rest = segments[0], segments[1:]
    if not rest:
        if isinstance(record, dict) and head in record:
            yield record, head
        return
    if head == "*":
        if isinstance(record, list):
            for item in record:
                yield from _locate(item, rest)
        return
    if isinstance(record, dict) and head in record:
        yield from _locate(record[head], rest)


def _deep_copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------

_KEEP_ANNOTATIONS = ("title", "description")


def _allows_null(schema: Mapping[str, Any]) -> bool:
    if not any(k in schema for k in ("type", "anyOf", "oneOf", "enum", "const")):
        return True  # an untyped property (``{"x-pii": ...}`` on a part of an object) allows any
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    for key in ("anyOf", "oneOf"):
        if any(isinstance(s, Mapping) and _allows_null(s) for s in schema.get(key) or ()):
            return True
    return False


def transform_schema(schema: Mapping[str, Any], plan: StreamPlan) -> dict[str, Any]:
    """A copy of a stream's JSON Schema matching the records ``plan`` produces.

    Encrypted fields become ``{"type": "string"}`` (plus ``"null"`` where it was allowed), with
    ``maxLength``, ``format``, ``enum`` and every other constraint dropped; tokens are added as
    nullable strings beside their field; hashed and dropped fields are removed (and from
    ``required``). Each transformed property records ``x-pii`` (kind) and ``x-pii-mode``.
    """
    out: dict[str, Any] = _deep_copy_json(schema)
    for rule in plan.rules:
        for parent in _schema_parents(out, rule.segments[:-1]):
            _transform_property(parent, rule, plan.token_suffix)
    return out


def _schema_parents(schema: dict[str, Any], segments: tuple[str, ...]) -> Iterable[dict[str, Any]]:
    node: Any = schema
    for seg in segments:
        if not isinstance(node, dict):
            return
        if seg == "*":
            node = node.get("items")
            continue
        props = node.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get(seg), dict):
            return  # the container is not described (free-form object): nothing to rewrite
        node = props[seg]
    if isinstance(node, dict):
        yield node


#: The note :func:`_transform_property` writes into a PII property's description.
_NOTE = re.compile(r"\bPII \((\w+)\), ")


def schema_kind(prop: Any) -> str | None:
    """A SCHEMA property's PII kind: its ``x-pii``, or the note this module writes into its
    description ("PII (email), encrypted ..."), which survives singer-sdk's SCHEMA messages
    where unknown keywords such as ``x-pii`` do not."""
    if not isinstance(prop, Mapping):
        return None
    if prop.get("x-pii"):
        return str(prop["x-pii"])
    found = _NOTE.search(str(prop.get("description") or ""))
    return found.group(1) if found else None


def _described(old: Mapping[str, Any], note: str) -> str:
    text = str(old.get("description") or "").strip()
    if not text:
        return note
    return f"{text} {note}" if text.endswith((".", "!", "?")) else f"{text}. {note}"


def _transform_property(parent: dict[str, Any], rule: _Resolved, suffix: str) -> None:
    name = rule.segments[-1]
    props = parent.setdefault("properties", {})
    old = props.get(name)
    old = old if isinstance(old, dict) else {}
    nullable = _allows_null(old) if old else True
    marks = {"x-pii": rule.kind.value, "x-pii-mode": rule.mode.value}
    # Singer tooling drops unknown keywords such as x-pii (singer-sdk's Schema keeps a fixed
    # list), so the description says it too: a target or a person reading the SCHEMA sees it.
    said = {"encrypt": f"encrypted ({ENC_PREFIX}<key_id>:<base64url>)", "keep": "plain text"}
    note = f"PII ({rule.kind.value}), {said.get(rule.mode.value, rule.mode.value)}."
    if rule.mode is Mode.ENCRYPT:
        new: dict[str, Any] = {k: old[k] for k in _KEEP_ANNOTATIONS if k in old}
        new["type"] = ["string", "null"] if nullable else "string"
        new["description"] = _described(old, note)
        props[name] = {**new, **marks}
    elif rule.mode is Mode.KEEP:
        if old:
            props[name] = {**old, "description": _described(old, note), **marks}
    else:
        props.pop(name, None)
        required = parent.get("required")
        if isinstance(required, list) and name in required:
            parent["required"] = [r for r in required if r != name]
    if rule.token:
        props[name + suffix] = {
            "type": ["string", "null"],
            "description": f"Keyed HMAC token of {name} ({TOK_PREFIX}<key_id>:<base64url>).",
            "x-pii-token": rule.kind.value,
        }


# ---------------------------------------------------------------------------------------------
# Log redaction
# ---------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PII_FORMAT_RE = re.compile(r"\b(enc|tok):v1:[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_-]+")
# ``name: value`` / ``"name": "value"`` for credential names (JSON bodies, headers, reprs) ...
_CREDENTIAL_RE = re.compile(
    r"(?i)(?<![/\w-])(access_token|refresh_token|client_secret|password|hapikey|api_key|apikey|token)"
    r"(\"?\s*[=:]\s*\"?)[^\s&\"',;]+"
)
# ... and ``name=value`` in query strings for every parameter crm_connectors.secrets knows.
_QUERY_SECRET_RE = re.compile(
    r"(?i)([?&;\s](?:" + "|".join(sorted(map(re.escape, SENSITIVE_PARAMS))) + r")=)[^\s&#\"']+"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
MIN_SECRET_LENGTH = 6


class RedactingFilter(logging.Filter):
    """Masks registered secrets, e-mail addresses, ``enc:``/``tok:`` values and credentials in
    URLs/headers (``access_token=...``, ``Bearer ...``) in log messages, their arguments and
    formatted tracebacks. Always lets the record through.

    Secrets shorter than 6 characters are not registered (they would mask ordinary words).
    Attach it to handlers (``install_redaction``): a filter on a logger does not see records
    propagated from its children.
    """

    def __init__(
        self,
        secrets: Iterable[str | Secret] = (),
        *,
        mask_emails: bool = True,
        mask_pii_formats: bool = True,
        mask_credentials: bool = True,
    ) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        self._mask_emails = mask_emails
        self._mask_pii_formats = mask_pii_formats
        self._mask_credentials = mask_credentials
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str | Secret]) -> None:
        """Register more strings to mask (``Secret`` values are revealed for matching only)."""
        texts = (s.reveal() if isinstance(s, Secret) else s for s in secrets)
        self._secrets.update(t for t in texts if isinstance(t, str) and len(t) >= MIN_SECRET_LENGTH)
        if self._secrets:
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    def __repr__(self) -> str:
        return f"RedactingFilter(secrets={len(self._secrets)})"

    def redact(self, text: str) -> str:
        if self._secret_re is not None:
            text = self._secret_re.sub("***", text)
        if self._mask_credentials:
            text = _BEARER_RE.sub(lambda m: f"{m.group(1)} ***", text)
            text = _CREDENTIAL_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
            text = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}***", text)
        if self._mask_pii_formats:
            text = _PII_FORMAT_RE.sub(lambda m: f"{m.group(1)}:***", text)
        if self._mask_emails:
            text = _EMAIL_RE.sub("<email>", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # mismatched %-arguments: keep the template only
            message = str(record.msg)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


#: The project's loggers, the singer-sdk plugins' own (named after the plugins) and the HTTP
#: libraries'.
DEFAULT_LOGGERS = (
    "crm_connectors",
    "tap_crm",
    "tap-crm",
    "target_health",
    "target-health",
    "singer_sdk",
    "httpx",
    "httpcore",
)


def install_redaction(
    redactor: RedactingFilter,
    loggers: Iterable[str] = DEFAULT_LOGGERS,
    *,
    handlers: Iterable[logging.Handler] | None = None,
) -> Callable[[], None]:
    """Attach ``redactor`` to the named loggers, to their handlers and to the root logger's
    handlers (or to ``handlers`` if given). Returns a function that detaches it again.

    Handlers added after this call are not covered: call it again after configuring logging.
    """
    targets: list[logging.Filterer] = []
    names = list(loggers)
    for name in names:
        targets.append(logging.getLogger(name))
    if handlers is None:
        found: list[logging.Handler] = list(logging.getLogger().handlers)
        for name in names:
            found.extend(logging.getLogger(name).handlers)
        handlers = found
    seen: set[int] = set()
    for handler in handlers:
        if id(handler) not in seen:
            seen.add(id(handler))
            targets.append(handler)
    targets = [t for t in targets if redactor not in t.filters]  # idempotent: no piling up
    for target in targets:
        target.addFilter(redactor)

    def remove() -> None:
        for target in targets:
            target.removeFilter(redactor)

    return remove


_PROCESS_REDACTOR = RedactingFilter()


def redact_in_logs(secrets: Iterable[str | Secret] = ()) -> RedactingFilter:
    """The process's one redaction filter, with ``secrets`` added, (re)installed on the
    project's loggers and the root handlers: every plugin instance in a process (tests make
    many) shares it, and installing again only covers handlers added since."""
    _PROCESS_REDACTOR.add_secrets(secrets)
    install_redaction(_PROCESS_REDACTOR)
    return _PROCESS_REDACTOR
