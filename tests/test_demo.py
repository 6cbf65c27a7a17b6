"""The README's demo command, end to end on a small seed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_connectors.sandbox import demo


def test_given_fresh_dir_when_running_demo_then_every_crm_is_read_back_through_its_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(["--size", "80", "--dir", str(tmp_path), "--port", "0", "--no-serve"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\s+(hubspot|salesforce|intercom)\s+\w+\s+(\d+)\s+(\d+)", out, re.M)
    }
    assert set(rows) == {"hubspot", "salesforce", "intercom"}
    for read, placed in rows.values():
        # Live listings leave out the few archived, deleted and merged records, nothing else.
        assert 0.9 * placed <= read <= placed
    assert "Ground truth: 80 accounts" in out
    assert (tmp_path / "crm-80-1.sqlite.exports" / "usage.csv").exists()
