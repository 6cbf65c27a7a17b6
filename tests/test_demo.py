"""The README's demo command, end to end on a small seed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_connectors.sandbox import demo


def test_given_fresh_dir_when_running_demo_then_tap_crm_syncs_every_crm_and_reruns_incrementally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh directory, when the demo runs (sandbox with real rate limits + tap-crm)
    code = demo.main(["--size", "40", "--dir", str(tmp_path), "--port", "0", "--no-serve"])
    out = capsys.readouterr().out
    # then it succeeds and reports records and API calls for each CRM
    assert code == 0, out
    rows = {
        m.group(1): (int(m.group(2)), int(m.group(3).replace(",", "")), int(m.group(4)))
        for m in re.finditer(
            r"^\s+(hubspot|salesforce|intercom)\s+(\d+)\s+([\d,]+)\s+(\d+)\s", out, re.M
        )
    }
    assert set(rows) == {"hubspot", "salesforce", "intercom"}
    for streams, records, calls in rows.values():
        assert streams >= 5 and records > 0 and calls > 0
    # and PII came out encrypted and tokenised, with keys made once, owner-only
    assert re.search(r"hubspot_contacts\.email\s+enc:v1:demo:", out)
    assert re.search(r"hubspot_contacts\.email__token\s+tok:v1:demoh:", out)
    keys = tmp_path / "pii-keys.env"
    assert keys.stat().st_mode & 0o077 == 0
    # and the incremental rerun reads fewer records than the full sync
    rerun = int(
        re.search(r"Incremental rerun from that state: ([\d,]+) records", out)[1].replace(",", "")
    )  # type: ignore[index]
    assert rerun < sum(r for _, r, _ in rows.values())
    assert (tmp_path / "tap-full.jsonl").exists() and (tmp_path / "state.json").exists()
