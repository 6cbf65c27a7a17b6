"""NPS per account and overall, on a worked example that follows SCORING.md ("NPS"):
promoters 9-10, detractors 0-6, every response in the window (as_of - N days, as_of] counts,
the overall figure pools responses, and no response means no NPS."""

from __future__ import annotations

import datetime as dt

from target_health.scoring.facts import AccountFacts, NpsFact
from target_health.scoring.nps import NpsPool, NpsResult, account_nps, nps_report

AS_OF = dt.date(2026, 11, 1)
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def ago(days: float) -> dt.datetime:
    return T0 - dt.timedelta(days=days)


ACCOUNTS = (
    # A: 10, 9, 8, 6, 3 in the window -> 2 promoters, 1 passive, 2 detractors;
    #    a 0 exactly 365 days before as_of is outside, a 10 after as_of is not yet.
    AccountFacts(
        "A",
        nps=(
            NpsFact(10, ago(1)),
            NpsFact(9, ago(100)),
            NpsFact(8, ago(200)),
            NpsFact(6, ago(300)),
            NpsFact(3, ago(364.9)),
            NpsFact(0, ago(365)),
            NpsFact(10, T0 + dt.timedelta(seconds=1)),
        ),
    ),
    # B: the same contact may answer twice; both count: 9, 9, 7 -> 2 promoters, 1 passive
    AccountFacts("B", nps=(NpsFact(9, ago(10)), NpsFact(9, ago(40)), NpsFact(7, ago(50)))),
    # C: one response, at as_of 00:00 exactly (inside: the window ends at as_of inclusive)
    AccountFacts("C", nps=(NpsFact(0, T0),)),
    # D: only responses older than the window
    AccountFacts("D", nps=(NpsFact(10, ago(400)),)),
    # E: none
    AccountFacts("E"),
)


def test_given_worked_example_when_computing_nps_then_per_account_and_pooled_overall():
    # When the NPS report is computed over the default 365-day window
    report = nps_report(ACCOUNTS, AS_OF)
    # then per account: A (2 - 2) / 5 = 0; B (2 - 0) / 3 = 66.67 -> 66.7; C (0 - 1) / 1 = -100
    assert report.accounts == {
        "A": NpsResult(0.0, 5, 2, 1, 2),
        "B": NpsResult(66.7, 3, 2, 1, 0),
        "C": NpsResult(-100.0, 1, 0, 0, 1),
        "D": NpsResult(None, 0, 0, 0, 0),
        "E": NpsResult(None, 0, 0, 0, 0),
    }
    # and overall pools the 9 responses: promoters 4, passives 2, detractors 3:
    # 100 x (4 - 3) / 9 = 11.11 -> 11.1 (the mean of account NPS would be -11.1: not that)
    assert report.overall == NpsResult(11.1, 9, 4, 2, 3)
    assert report.window_days == 365


def test_given_shorter_window_when_computing_nps_then_older_responses_drop_out():
    # Given account A and a 90-day window: only the 10 from yesterday is in (9 is 100 days old)
    result = account_nps(ACCOUNTS[0], AS_OF, window_days=90)
    # then its NPS is 100 from one promoter
    assert result == NpsResult(100.0, 1, 1, 0, 0)
    # and D's response, 400 days old, is inside a 401-day window but not a 400-day one (the
    # window's start is excluded)
    assert account_nps(ACCOUNTS[3], AS_OF, window_days=401).nps == 100.0
    assert account_nps(ACCOUNTS[3], AS_OF, window_days=400).nps is None


def test_given_naive_datetimes_when_computing_nps_then_they_are_taken_as_utc():
    # Given a response stamped with a naive datetime exactly 365 days before as_of 00:00
    facts = AccountFacts("N", nps=(NpsFact(10, dt.datetime(2025, 11, 1)),))
    # then it is treated as UTC: on the window's open edge, so outside
    assert account_nps(facts, AS_OF).nps is None
    assert facts.nps[0].submitted.tzinfo is dt.timezone.utc


def test_given_each_accounts_nps_when_pooled_as_counts_then_the_overall_nps():
    # Given each account's own result (as compute has them, one account at a time)
    pool = NpsPool()
    for facts in ACCOUNTS:
        pool.add(account_nps(facts, AS_OF))
    # then the pool is the overall NPS of every response pooled, not a mean of account NPS
    assert pool.result() == nps_report(ACCOUNTS, AS_OF).overall == NpsResult(11.1, 9, 4, 2, 3)
    # and with no response there is no NPS
    assert NpsPool().result() == NpsResult(None, 0, 0, 0, 0)
