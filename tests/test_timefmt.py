"""Bookmarks are epoch ms: converting to and from ISO-8601 must be exact, or a resumed read
starts one millisecond early (repeats) or late (skips)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_connectors.timefmt import iso_to_ms, ms_to_iso

MS = st.integers(min_value=0, max_value=253_402_300_799_999)  # 1970 .. 9999-12-31T23:59:59.999


@given(MS)
def test_given_any_millisecond_when_round_tripped_then_it_is_exact(ms: int) -> None:
    text = ms_to_iso(ms)
    assert iso_to_ms(text) == ms
    assert iso_to_ms(text.replace("Z", "+0000")) == ms  # Salesforce's form
    assert iso_to_ms(text.replace("Z", "+00:00")) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-03-14T09:27:15.914-0700", 1_710_433_635_914),
        ("2024-03-14T09:27:15", 1_710_408_435_000),  # naive = UTC
        ("2024-03-14T09:27:15.9149Z", 1_710_408_435_914),  # sub-ms floored
        ("1710408435914", 1_710_408_435_914),  # HubSpot epoch-ms text
    ],
)
def test_given_vendor_forms_when_parsed_then_epoch_ms(text: str, ms: int) -> None:
    assert iso_to_ms(text) == ms
