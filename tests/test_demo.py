"""The README's demo command, end to end on a small seed: meltano run tap-crm target-health."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_connectors.sandbox import demo
from crm_connectors.sandbox.emulators import vendors


def test_given_fresh_dir_when_running_demo_then_the_pipeline_scores_every_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh directory, when the demo runs (sandbox with real rate limits + Meltano)
    code = demo.main(["--size", "60", "--dir", str(tmp_path), "--port", "0", "--no-serve"])
    out = capsys.readouterr().out
    # then it succeeds, with API calls to each CRM and records stored, none quarantined
    assert code == 0, out
    crms = vendors()
    names = "|".join(crms)
    calls = dict(re.findall(rf"({names}) (\d+)", out.split("API calls:")[1].splitlines()[0]))
    assert set(calls) == set(crms) and all(int(n) > 0 for n in calls.values()), out
    stored = re.search(r"stored ([\d,]+) of ([\d,]+) records \((\d+) quarantined\)", out)
    assert stored and int(stored[1].replace(",", "")) > 0 and stored[3] == "0"
    # and the scores were written back to every CRM, none failing
    written = re.search(r"write-back plan \w+: ([\d,]+) CRM records updated \((.*)\) in (\d+)"
                        r" write calls, (\d+) failed", out)  # fmt: skip
    assert written and int(written[1].replace(",", "")) > 0 and written[4] == "0", out
    assert all(crm in written[2] for crm in crms), written[2]
    # and the bands put every at-risk customer of the ground truth in at_risk or critical
    row = re.search(r"^\s+at_risk\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", out, re.M)
    assert row, out
    healthy, neutral, at_risk, critical = (int(x.replace(",", "")) for x in row.groups())
    assert at_risk + critical > 0 and healthy == neutral == 0
    # and NPS, retention and one account's reasons are shown
    assert re.search(r"^NPS -?[\d.]+ from [\d,]+ responses", out, re.M)
    assert "GRR" in out and re.search(r"^Why ext:ACC-\d+ is critical", out, re.M)
    # and the incremental rerun reads few CRM records
    rerun = re.search(r"Incremental rerun from Meltano's state: ([\d,]+) CRM records", out)
    assert rerun and int(rerun[1].replace(",", "")) < int(stored[2].replace(",", "")) // 10
    assert "write-back planned 0 changes and made 0 write calls" in out
    assert (tmp_path / "pii-keys.env").stat().st_mode & 0o077 == 0
