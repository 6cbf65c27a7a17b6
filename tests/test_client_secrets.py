"""Secrets never show themselves, and URLs lose their credentials before they reach a log."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from clientkit import READ, client

from crm_connectors.secrets import Secret, redact_url

CANARY = "canary-0b9e44d1c2"


def test_given_secret_when_formatted_any_way_then_masked() -> None:
    secret = Secret(CANARY)
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>20}",
        str([secret]),
    ]
    assert all(CANARY not in text for text in shown)
    assert secret.reveal() == CANARY
    assert Secret(CANARY) == secret and Secret("other") != secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_given_url_with_credentials_when_redacted_then_only_credentials_masked() -> None:
    url = f"https://user:{CANARY}@api.example.com/x?limit=5&hapikey={CANARY}&Access_Token={CANARY}"
    redacted = redact_url(url)
    assert CANARY not in redacted
    assert "limit=5" in redacted and "hapikey=***" in redacted and "Access_Token=***" in redacted
    assert redacted.startswith("https://user:***@api.example.com/x?")


def test_given_token_in_query_when_request_logged_then_redacted(
    make_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = make_sandbox(vendors=("hubspot",), size=5)
    path, params, route = READ["hubspot"]
    with client(sandbox, "hubspot") as api:
        api.request("GET", path, params={**params, "hapikey": CANARY}, route=route)
    ours = [r for r in caplog.records if not r.name.startswith("crm_connectors.sandbox")]
    assert any("hapikey=***" in r.getMessage() for r in ours)  # httpx logged the URL, masked
    assert all(CANARY not in r.getMessage() for r in ours)
