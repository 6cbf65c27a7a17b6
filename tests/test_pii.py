"""PII protection: encryption, tokens, policy modes, schema transform, key config, redaction."""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_connectors.errors import ConfigError, SkippableError
from crm_connectors.pii import (
    ENC_PREFIX,
    TOK_PREFIX,
    FieldRule,
    KeyRing,
    Mode,
    PiiConfigError,
    PiiDecryptError,
    PiiKind,
    PiiPolicy,
    RedactingFilter,
    install_redaction,
    normalise,
    transform_schema,
)
from crm_connectors.secrets import Secret

# Canary key material: if any of these shows up in a repr, message or log, the test fails.
ENC_A = bytes(range(32))
ENC_B = bytes(range(100, 132))
HMAC_A = bytes(range(200, 232))
HMAC_B = bytes(range(50, 82))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def ring(active: str = "k2026a", hmac_active: str = "h1") -> KeyRing:
    return KeyRing(
        {"k2026a": ENC_A, "k2025b": ENC_B},
        active,
        {"h1": HMAC_A, "h2": HMAC_B},
        hmac_active,
    )


def hubspot_contact() -> dict[str, Any]:
    return {
        "id": "101",
        "properties": {
            "email": "Ada.Lovelace@Example.com",
            "firstname": "Ada",
            "phone": "+44 20 7946 0000",
            "lifecyclestage": "customer",
        },
        "archived": False,
    }


CONTACT_RULES: dict[str, Any] = {
    "properties.email": "email",
    "properties.firstname": {"kind": "name"},
    "properties.phone": {"kind": "phone", "mode": "hash"},
}


# -- encryption --------------------------------------------------------------------------------


def test_given_value_when_encrypting_then_format_is_compact_and_decrypts_back() -> None:
    keys = ring()
    ciphertext = keys.encrypt("ada@example.com", stream="contacts", path="properties.email")
    assert ciphertext.startswith(f"{ENC_PREFIX}k2026a:")
    assert ciphertext.isascii() and "ada" not in ciphertext
    assert keys.decrypt(ciphertext, stream="contacts", path="properties.email") == (
        "ada@example.com"
    )


def test_given_same_value_when_encrypting_twice_then_ciphertexts_differ() -> None:
    keys = ring()
    first = keys.encrypt("x", stream="s", path="f")
    second = keys.encrypt("x", stream="s", path="f")
    assert first != second  # random nonce per encryption


@pytest.mark.parametrize("value", [42, 3.5, True, ["a", 1], {"street": "1 Main St", "n": None}])
def test_given_non_string_json_when_round_tripping_then_type_is_restored(value: Any) -> None:
    keys = ring()
    ciphertext = keys.encrypt(value, stream="s", path="f")
    assert keys.decrypt(ciphertext, stream="s", path="f") == value
    assert type(keys.decrypt(ciphertext, stream="s", path="f")) is type(value)


@pytest.mark.parametrize(
    ("stream", "path"),
    [
        ("contacts", "properties.firstname"),
        ("companies", "properties.email"),
        ("contacts", "email"),
    ],
)
def test_given_ciphertext_when_moved_to_another_field_then_decryption_fails(
    stream: str, path: str
) -> None:
    keys = ring()
    ciphertext = keys.encrypt("ada@example.com", stream="contacts", path="properties.email")
    with pytest.raises(PiiDecryptError, match="authentication failed") as err:
        keys.decrypt(ciphertext, stream=stream, path=path)
    assert "ada" not in str(err.value)


def test_given_dotted_and_pointer_paths_when_decrypting_then_they_are_the_same_field() -> None:
    keys = ring()
    ciphertext = keys.encrypt("v", stream="s", path="custom_attributes.plan")
    assert keys.decrypt(ciphertext, stream="s", path="/custom_attributes/plan") == "v"
    assert keys.decrypt(ciphertext, stream="s", path=("custom_attributes", "plan")) == "v"


def test_given_flipped_byte_when_decrypting_then_tamper_is_detected() -> None:
    keys = ring()
    ciphertext = keys.encrypt("secret note", stream="tickets", path="content")
    head, payload = ciphertext.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-1] ^= 0x01
    tampered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(PiiDecryptError):
        keys.decrypt(tampered, stream="tickets", path="content")
    with pytest.raises(PiiDecryptError, match="too short"):
        keys.decrypt(head + ":AAAA", stream="tickets", path="content")


def test_given_key_id_swapped_when_decrypting_then_it_fails() -> None:
    keys = ring()
    ciphertext = keys.encrypt("v", stream="s", path="f")
    swapped = ciphertext.replace(":k2026a:", ":k2025b:")
    with pytest.raises(PiiDecryptError):
        keys.decrypt(swapped, stream="s", path="f")


def test_given_rotated_active_key_when_decrypting_old_values_then_they_still_open() -> None:
    old_ring = ring(active="k2025b")
    old = old_ring.encrypt("ada@example.com", stream="s", path="email")
    new_ring = ring(active="k2026a")
    fresh = new_ring.encrypt("ada@example.com", stream="s", path="email")
    assert fresh.startswith(f"{ENC_PREFIX}k2026a:") and old.startswith(f"{ENC_PREFIX}k2025b:")
    assert new_ring.decrypt(old, stream="s", path="email") == "ada@example.com"
    retired = KeyRing({"k2026a": ENC_A})
    with pytest.raises(PiiDecryptError, match="not in the key ring"):
        retired.decrypt(old, stream="s", path="email")


@settings(max_examples=60, deadline=None)
@given(value=st.text(), stream=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_given_arbitrary_unicode_when_round_tripping_then_value_is_identical(
    value: str, stream: str
) -> None:
    keys = KEYS_FOR_PROPERTY
    ciphertext = keys.encrypt(value, stream=stream, path="notes.body")
    assert ciphertext.isascii()
    assert keys.decrypt(ciphertext, stream=stream, path="notes.body") == value


KEYS_FOR_PROPERTY = ring()

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(email=JSON_VALUES, note=JSON_VALUES, other=JSON_VALUES)
def test_given_arbitrary_json_record_when_applying_then_reveal_restores_it(
    email: Any, note: Any, other: Any
) -> None:
    policy = PiiPolicy(
        KEYS_FOR_PROPERTY,
        {"s": {"email": "email", "custom_attributes.note": {"kind": "free_text"}}},
    )
    record = {"email": email, "custom_attributes": {"note": note, "other": other}}
    out = policy.apply("s", record)
    assert out["custom_attributes"]["other"] == other
    if email is not None:
        assert isinstance(out["email"], str) and out["email"].startswith(ENC_PREFIX)
    revealed = policy.reveal("s", out)
    revealed.pop("email__token")
    assert revealed == record


# -- tokens ------------------------------------------------------------------------------------


def test_given_email_variants_when_tokenising_then_tokens_are_equal() -> None:
    keys = ring()
    token = keys.token("Foo@X.com ", PiiKind.EMAIL)
    assert token is not None and token.startswith(f"{TOK_PREFIX}h1:")
    assert token == keys.token("foo@x.com", PiiKind.EMAIL)
    assert token != keys.token("foo@y.com", PiiKind.EMAIL)
    # Same value under another kind is another token (domain separation).
    assert token != keys.token("foo@x.com", PiiKind.FREE_TEXT)


def test_given_same_email_in_two_crms_when_applying_policies_then_tokens_join() -> None:
    keys = ring()
    policy = PiiPolicy(
        keys,
        {
            "hubspot_contacts": {"properties.email": "email"},
            "intercom_contacts": {"email": "email"},
        },
    )
    hubspot = policy.apply("hubspot_contacts", {"properties": {"email": "Foo@X.com "}})
    intercom = policy.apply("intercom_contacts", {"email": "foo@x.com"})
    assert hubspot["properties"]["email__token"] == intercom["email__token"]
    # ... while the ciphertexts are bound to their own stream and field.
    assert hubspot["properties"]["email"] != intercom["email"]


def test_given_another_hmac_key_when_tokenising_then_tokens_differ_and_both_verify() -> None:
    keys = ring()
    first = keys.token("foo@x.com", "email")
    second = keys.token("foo@x.com", "email", key_id="h2")
    assert first != second and second is not None and second.startswith(f"{TOK_PREFIX}h2:")
    assert keys.token_matches(" FOO@x.com", "email", first or "")
    assert keys.token_matches("foo@x.com", "email", second)
    assert not keys.token_matches("bar@x.com", "email", first or "")


@pytest.mark.parametrize(
    ("kind", "variants"),
    [
        ("phone", ["+44 20 7946 0000", "0044 (20) 7946-0000", "+44.20.7946.0000 ext. 12"]),
        ("name", ["Ada  Lovelace", " ada lovelace", "ADA\tLOVELACE"]),
        ("address", ["1 Main St., Springfield", "1 main st springfield"]),
    ],
)
def test_given_formatting_variants_when_tokenising_then_tokens_are_equal(
    kind: str, variants: list[str]
) -> None:
    keys = ring()
    tokens = {keys.token(v, kind) for v in variants}
    assert len(tokens) == 1 and None not in tokens


def test_given_documented_normal_forms_when_normalising_then_they_hold() -> None:
    assert normalise("email", " Foo@X.com ") == "foo@x.com"
    assert normalise("phone", "+1 (555) 010-9999") == "+15550109999"
    assert normalise("phone", 15550109999) == "+15550109999"
    assert normalise("phone", "+\u0664\u0664 \uff12\uff10 7946 0000") == "+442079460000"
    assert normalise("name", "  Ada\u00a0 LOVELACE ") == "ada lovelace"
    assert normalise("free_text", " As Is ") == " As Is "


def test_given_null_or_empty_phone_when_tokenising_then_token_is_none() -> None:
    keys = ring()
    assert keys.token(None, "phone") is None
    assert keys.token("n/a", "phone") is None
    assert keys.token("   ", "email") is None


def test_given_no_hmac_key_when_policy_needs_tokens_then_config_error_names_setting() -> None:
    keys = KeyRing({"k1": ENC_A})
    # Tokens are optional: without an HMAC key, email's default token is off ...
    policy = PiiPolicy(keys, {"contacts": {"email": "email"}})
    out = policy.apply("contacts", {"email": "a@b.c"})
    assert out["email"].startswith(ENC_PREFIX)
    assert "email__token" not in out
    # ... but a rule that asks for one, or mode hash, names the setting to fill.
    for rule in ({"kind": "email", "token": True}, {"kind": "email", "mode": "hash"}):
        with pytest.raises(PiiConfigError, match="CRM_PII_HMAC_KEYS"):
            PiiPolicy(keys, {"contacts": {"email": rule}})


def test_given_no_keys_when_fields_are_dropped_or_kept_then_no_key_is_needed() -> None:
    policy = PiiPolicy(
        None,
        {
            "contacts": {
                "email": {"kind": "email", "mode": "drop"},
                "city": {"kind": "address", "mode": "keep"},
            }
        },
    )
    assert policy.apply("contacts", {"email": "a@b.c", "city": "Lyon"}) == {"city": "Lyon"}
    with pytest.raises(PiiConfigError, match="CRM_PII_KEYS") as err:
        PiiPolicy(None, {"contacts": {"email": "email"}})
    assert "contacts field /email" in str(err.value)


# -- policy modes ------------------------------------------------------------------------------


def test_given_default_modes_when_applying_then_pii_is_encrypted_and_rest_untouched() -> None:
    keys = ring()
    policy = PiiPolicy(keys, {"contacts": CONTACT_RULES})
    record = hubspot_contact()
    out = policy.apply("contacts", record)
    props = out["properties"]
    assert props["email"].startswith(ENC_PREFIX) and props["firstname"].startswith(ENC_PREFIX)
    assert props["email__token"] == keys.token("ada.lovelace@example.com", "email")
    assert "firstname__token" not in props  # names get no token by default
    assert props["lifecyclestage"] == "customer" and out["id"] == "101"
    assert record == hubspot_contact()  # input not modified
    assert policy.reveal("contacts", out)["properties"]["email"] == "Ada.Lovelace@Example.com"


def test_given_hash_mode_when_applying_then_only_the_token_remains() -> None:
    keys = ring()
    out = PiiPolicy(keys, {"contacts": CONTACT_RULES}).apply("contacts", hubspot_contact())
    assert "phone" not in out["properties"]
    assert out["properties"]["phone__token"] == keys.token("+442079460000", "phone")
    assert "7946" not in repr(out)


def test_given_drop_mode_when_applying_then_field_is_gone_without_token() -> None:
    policy = PiiPolicy(ring(), {"tickets": {"content": {"kind": "free_text", "mode": "drop"}}})
    out = policy.apply("tickets", {"id": 1, "content": "my card is 4111", "priority": "high"})
    assert out == {"id": 1, "priority": "high"}


def test_given_explicit_keep_when_applying_then_plaintext_stays_with_optional_token() -> None:
    keys = ring()
    policy = PiiPolicy(
        keys,
        {"contacts": {"email": FieldRule("email", PiiKind.EMAIL, Mode.KEEP, token=True)}},
    )
    out = policy.apply("contacts", {"email": "foo@x.com"})
    assert out == {"email": "foo@x.com", "email__token": keys.token("foo@x.com", "email")}


@pytest.mark.parametrize("kind", list(PiiKind))
def test_given_no_mode_when_resolving_defaults_then_plaintext_is_never_kept(kind: PiiKind) -> None:
    out = PiiPolicy(ring(), {"s": {"f": kind.value}}).apply("s", {"f": "plain value"})
    assert out["f"] != "plain value" and out["f"].startswith(ENC_PREFIX)


def test_given_null_value_when_encrypting_then_null_stays_null_and_token_is_null() -> None:
    out = PiiPolicy(ring(), {"s": {"email": "email"}}).apply("s", {"email": None})
    assert out == {"email": None, "email__token": None}


def test_given_unknown_stream_when_applying_then_record_passes_through() -> None:
    record = {"email": "foo@x.com"}
    assert PiiPolicy(ring(), {"s": {"email": "email"}}).apply("other", record) == record


# -- nested paths ------------------------------------------------------------------------------


def test_given_nested_paths_when_applying_then_only_those_leaves_change() -> None:
    keys = ring()
    policy = PiiPolicy(
        keys,
        {
            "intercom_contacts": {
                "custom_attributes.home_address": "address",
                "/custom_attributes/notes~1private": {"kind": "free_text", "mode": "drop"},
                "social_profiles.data.*.url": "free_text",
            }
        },
    )
    record: dict[str, Any] = {
        "id": "c1",
        "custom_attributes": {"home_address": "1 Main St", "notes/private": "x", "plan": "pro"},
        "social_profiles": {"data": [{"name": "X", "url": "https://x.example/ada"}, "odd"]},
    }
    out = policy.apply("intercom_contacts", record)
    attrs = out["custom_attributes"]
    assert attrs["plan"] == "pro" and "notes/private" not in attrs
    assert attrs["home_address"].startswith(ENC_PREFIX)
    items = out["social_profiles"]["data"]
    assert items[0]["name"] == "X" and items[0]["url"].startswith(ENC_PREFIX) and items[1] == "odd"
    assert record["custom_attributes"]["notes/private"] == "x"  # input untouched
    revealed = policy.reveal("intercom_contacts", out)
    assert revealed["custom_attributes"]["home_address"] == "1 Main St"
    assert revealed["social_profiles"]["data"][0]["url"] == "https://x.example/ada"


def test_given_missing_or_non_object_container_when_applying_then_nothing_breaks() -> None:
    policy = PiiPolicy(ring(), {"s": {"properties.email": "email"}})
    assert policy.apply("s", {"id": 1}) == {"id": 1}
    assert policy.apply("s", {"properties": None}) == {"properties": None}


def test_given_overlapping_rules_when_building_policy_then_config_error() -> None:
    with pytest.raises(PiiConfigError, match="inside another PII field"):
        PiiPolicy(ring(), {"s": {"address": "address", "address.city": "address"}})


# -- schema ------------------------------------------------------------------------------------

CONTACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "properties"],
    "properties": {
        "id": {"type": "string"},
        "properties": {
            "type": "object",
            "required": ["phone"],
            "properties": {
                "email": {
                    "type": ["string", "null"],
                    "format": "email",
                    "maxLength": 254,
                    "description": "Primary email",
                },
                "firstname": {"type": "string", "maxLength": 40},
                "phone": {"type": ["string", "null"]},
                "lifecyclestage": {"type": "string", "enum": ["lead", "customer"]},
            },
        },
    },
}


def test_given_policy_when_transforming_schema_then_it_matches_the_records() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    policy = PiiPolicy(ring(), {"contacts": CONTACT_RULES})
    schema = transform_schema(CONTACT_SCHEMA, policy.plan("contacts"))
    props = schema["properties"]["properties"]["properties"]
    assert props["email"]["type"] == ["string", "null"]
    assert "maxLength" not in props["email"] and "format" not in props["email"]
    assert props["email"]["description"] == (
        "Primary email. PII (email), encrypted (enc:v1:<key_id>:<base64url>)."
    )
    assert props["firstname"]["type"] == "string" and "maxLength" not in props["firstname"]
    assert "phone" not in props and props["phone__token"]["type"] == ["string", "null"]
    assert "phone" not in schema["properties"]["properties"]["required"]
    assert props["lifecyclestage"]["enum"] == ["lead", "customer"]  # non-PII untouched
    assert CONTACT_SCHEMA["properties"]["properties"]["properties"]["email"]["maxLength"] == 254
    record = policy.apply("contacts", hubspot_contact())
    jsonschema.validate(record, schema)


def test_given_x_pii_annotations_when_building_from_schemas_then_rules_follow() -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-pii": "email"},
            "notes": {"type": "array", "items": {"type": "string"}, "x-pii": "free_text"},
            "plan": {"type": "string"},
        },
    }
    policy = PiiPolicy.from_schemas(ring(), {"contacts": schema}, {"contacts": {"email": "email"}})
    out = policy.apply("contacts", {"email": "a@b.co", "notes": ["n1"], "plan": "pro"})
    assert out["email"].startswith(ENC_PREFIX) and out["notes"].startswith(ENC_PREFIX)
    assert out["plan"] == "pro" and "email__token" in out
    kept = PiiPolicy.from_schemas(
        ring(), {"contacts": schema}, {"contacts": {"/notes": {"mode": "keep"}}}
    )
    assert kept.apply("contacts", {"notes": ["n1"]}) == {"notes": ["n1"]}


def test_given_an_untyped_part_of_an_object_when_encrypting_then_null_still_validates() -> None:
    # Given a PII mark on parts of object fields that carry no type of their own (Zendesk's
    # via.source.from, an object, and satisfaction_rating.comment, a string or null)
    jsonschema = pytest.importorskip("jsonschema")
    nested = {"type": ["object", "null"], "properties": {"comment": {"x-pii": "free_text"}}}
    schema = {"type": "object", "properties": {"rating": nested}}
    policy = PiiPolicy.from_schemas(ring(), {"tickets": schema}, {})
    out_schema = transform_schema(schema, policy.plan("tickets"))
    # then the encrypted part stays nullable, as its untyped schema allowed null
    assert out_schema["properties"]["rating"]["properties"]["comment"]["type"] == [
        "string",
        "null",
    ]
    for rating in ({"comment": None}, {"comment": {"name": "Ann"}}, {"comment": "slow"}, None):
        record = policy.apply("tickets", {"rating": rating})
        jsonschema.validate(record, out_schema)
        if rating and rating["comment"] is not None:
            assert record["rating"]["comment"].startswith(ENC_PREFIX)


# -- key configuration -------------------------------------------------------------------------


def test_given_env_keys_when_building_key_ring_then_active_and_rotation_work() -> None:
    env = {
        "CRM_PII_KEYS": f"k2026a:{b64(ENC_A)}, k2025b:{b64(ENC_B)}",
        "CRM_PII_ACTIVE_KEY": "k2026a",
        "CRM_PII_HMAC_KEYS": f"h1:{base64.urlsafe_b64encode(HMAC_A).decode().rstrip('=')}",
    }
    keys = KeyRing.from_settings({}, env)
    assert keys.active_key_id == "k2026a" and keys.key_ids == ("k2026a", "k2025b")
    assert keys.active_hmac_key_id == "h1"
    assert keys.token("foo@x.com", "email") == ring().token("foo@x.com", "email")


def test_given_settings_and_env_when_building_then_settings_win() -> None:
    keys = KeyRing.from_settings(
        {"pii_keys": {"s1": b64(ENC_B)}}, {"CRM_PII_KEYS": f"e1:{b64(ENC_A)}"}
    )
    assert keys.key_ids == ("s1",) and keys.active_key_id == "s1"


@pytest.mark.parametrize(
    ("settings_", "env", "names"),
    [
        ({}, {}, "CRM_PII_KEYS"),
        ({"pii_keys": "k1:" + b64(ENC_A)[:-8]}, {}, "'pii_keys'"),
        ({}, {"CRM_PII_KEYS": b64(ENC_A)}, "'CRM_PII_KEYS'"),
        ({}, {"CRM_PII_KEYS": "k1:" + b64(os.urandom(16))}, "CRM_PII_KEYS"),
        ({}, {"CRM_PII_KEYS": "k1:not*base64*" + b64(ENC_A)}, "CRM_PII_KEYS"),
        ({}, {"CRM_PII_KEYS": f"k1:{b64(ENC_A)},k2:{b64(ENC_B)}"}, "CRM_PII_ACTIVE_KEY"),
        (
            {"pii_active_key": "nope"},
            {"CRM_PII_KEYS": f"k1:{b64(ENC_A)},k2:{b64(ENC_B)}"},
            "'pii_active_key'",
        ),
        ({}, {"CRM_PII_KEYS": f"k1:{b64(ENC_A)}", "CRM_PII_HMAC_KEYS": f"h:{b64(ENC_A)}"}, "HMAC"),
        (
            {},
            {"CRM_PII_KEYS": f"k1:{b64(ENC_A)}", "CRM_PII_HMAC_KEYS": "h:" + b64(b"short")},
            "CRM_PII_HMAC_KEYS",
        ),
        ({}, {"CRM_PII_KEYS": f"bad:id:{b64(ENC_A)}"}, "CRM_PII_KEYS"),
    ],
)
def test_given_bad_key_config_when_building_then_error_names_setting_not_value(
    settings_: dict[str, Any], env: dict[str, str], names: str
) -> None:
    with pytest.raises(PiiConfigError) as err:
        KeyRing.from_settings(settings_, env)
    message = str(err.value)
    assert names in message
    for canary in (b64(ENC_A), b64(ENC_A)[:-8], b64(ENC_B), "not*base64*"):
        assert canary not in message
    # Raised `from None`: no chained exception can carry the value into a traceback.
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__ or err.value.__context__ is None


# -- no key material or plaintext in repr, str or logs -----------------------------------------


def test_given_key_ring_and_policy_when_printed_then_no_key_material_shows() -> None:
    keys = ring()
    policy = PiiPolicy(keys, {"contacts": CONTACT_RULES})
    text = repr(keys) + str(keys) + repr(policy) + str(policy)
    assert "k2026a" in text and "h1" in text
    for key in (ENC_A, ENC_B, HMAC_A, HMAC_B):
        for form in (b64(key), key.hex(), repr(key)):
            assert form not in text
    with pytest.raises(TypeError):
        __import__("pickle").dumps(keys)


def test_given_redaction_installed_when_logging_pii_and_secrets_then_logs_are_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = ring()
    api_token = "pat-na1-CANARY-0123456789"
    redactor = RedactingFilter([api_token, *keys.secret_strings()])
    log = logging.getLogger("crm_connectors.hubspot.client")
    caplog.set_level(logging.DEBUG)
    remove = install_redaction(redactor, handlers=[caplog.handler])
    try:
        ciphertext = keys.encrypt("x", stream="s", path="f")
        log.info("token %s for %s", api_token, "Ada.Lovelace@Example.com")
        log.warning("key %s and %s", b64(HMAC_A), ciphertext)
        log.debug("GET /crm/v3/objects?hapikey=abc123secret&limit=100")
        log.info("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload")
        try:
            raise ValueError("bad row for grace.hopper@navy.mil")
        except ValueError:
            log.exception("failed")
    finally:
        remove()
    text = caplog.text
    for canary in (
        api_token,
        "Lovelace",
        b64(HMAC_A),
        ciphertext,
        "abc123secret",
        "eyJhbGciOiJIUzI1NiJ9",
        "grace.hopper",
    ):
        assert canary not in text
    assert "<email>" in text and "***" in text and "limit=100" in text
    assert "Traceback" in text


def test_given_policy_applied_when_logging_then_module_logs_nothing_sensitive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    policy = PiiPolicy(ring(), {"contacts": CONTACT_RULES})
    policy.apply("contacts", hubspot_contact())
    with pytest.raises(PiiDecryptError) as err:
        policy.keyring.decrypt("enc:v1:k2026a:" + "A" * 40, stream="contacts", path="email")
    assert "Ada" not in caplog.text and "A" * 40 not in str(err.value)


def test_given_short_secret_when_registering_then_ordinary_words_survive() -> None:
    redactor = RedactingFilter(["abc"])
    assert redactor.redact("abc def") == "abc def"


def test_given_secret_typed_settings_when_building_then_keys_parse_and_errors_are_config() -> None:
    keys = KeyRing.from_settings(
        {"pii_keys": Secret(f"k1:{b64(ENC_A)}"), "pii_hmac_keys": {"h1": Secret(b64(HMAC_A))}}, {}
    )
    assert keys.key_ids == ("k1",) and keys.hmac_key_ids == ("h1",)
    with pytest.raises(ConfigError) as err:
        KeyRing.from_settings({"pii_keys": Secret("k1:" + b64(b"tiny"))}, {})
    assert err.value.setting == "pii_keys" and isinstance(err.value, PiiConfigError)
    with pytest.raises(SkippableError):
        keys.decrypt("enc:v1:k1:" + "B" * 60, stream="s", path="f")


def test_given_query_credentials_when_redacting_then_values_go_and_prose_stays() -> None:
    redactor = RedactingFilter([Secret("sk-live-CANARY-42")])
    text = redactor.redact(
        "POST /oauth?code=AUTHCODE99&state=ok sk-live-CANARY-42 status code: 429 key id k1"
    )
    assert "AUTHCODE99" not in text and "sk-live-CANARY-42" not in text
    assert "state=ok" in text and "status code: 429" in text and "key id k1" in text


def test_given_keys_of_any_length_when_tokenising_then_the_mac_is_rfc_2104_hmac_sha256() -> None:
    import hashlib
    import hmac as std_hmac

    from crm_connectors.pii import _hmac_sha256

    for size in (32, 64, 65, 100):
        key = os.urandom(size)
        for message in (b"", b"tok\x00email\x00a@example.com", os.urandom(1000)):
            assert _hmac_sha256(key)(message) == std_hmac.new(key, message, hashlib.sha256).digest()


def test_given_many_encryptions_and_a_fork_when_taking_nonces_then_none_repeats() -> None:
    from crm_connectors.pii import _NONCES, NONCE_BYTES

    parent = [_NONCES.take() for _ in range(5000)]  # more than one block of 4,096
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its nonces must not continue the parent's inherited block
        os.close(read)
        os.write(write, b"".join(_NONCES.take() for _ in range(100)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        blob = pipe.read()
    os.waitpid(pid, 0)
    child = [blob[i : i + NONCE_BYTES] for i in range(0, len(blob), NONCE_BYTES)]
    after = [_NONCES.take() for _ in range(100)]
    assert len(child) == 100
    assert all(len(n) == NONCE_BYTES for n in parent + child + after)
    assert len(set(parent + child + after)) == len(parent) + len(child) + len(after)
