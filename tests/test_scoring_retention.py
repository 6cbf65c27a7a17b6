"""Retention, on the worked example of RETENTION.md ("retention definitions v1"), account by
account and figure by figure; the same-day rules; the periods; and the sandbox's world read
with the same definitions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import re
from pathlib import Path

import pytest
from scoringkit import WORLD_AS_OF, world

from target_health.scoring.facts import AccountFacts, DealFact
from target_health.scoring.model import PeriodSpec, parse_settings
from target_health.scoring.retention import (
    VERSION,
    ExactSum,
    Movement,
    Period,
    RetentionTally,
    arr_at,
    arr_timeline,
    periods,
    retention,
    retention_report,
)

D = dt.date.fromisoformat
RETENTION_MD = Path(__file__).parents[1] / "target-health" / "RETENTION.md"


def won(kind: str, amount: float, day: str, product: str | None = None) -> DealFact:
    return DealFact(kind, amount, "won", D(day), product)


def lost(day: str, product: str | None = None) -> DealFact:
    return DealFact("renewal", 0.0, "lost", D(day), product)


#: RETENTION.md, section 5: the ten accounts A..J.
EXAMPLE = (
    AccountFacts(
        "A",
        deals=(
            won("new_business", 10_000, "2024-03-01"),
            won("renewal", 10_000, "2025-03-01"),
            won("renewal", 10_000, "2026-03-01"),
        ),
    ),
    AccountFacts(
        "B",
        deals=(
            won("new_business", 20_000, "2025-01-15"),
            won("expansion", 5_000, "2026-02-10"),
            DealFact("expansion", 9_000, "open", D("2026-12-01")),
        ),
    ),
    AccountFacts(
        "C",
        deals=(
            won("new_business", 30_000, "2024-06-01"),
            won("renewal", 30_000, "2025-06-01"),
            won("renewal", 24_000, "2026-06-01"),
        ),
    ),
    AccountFacts(
        "D",
        churned_on=D("2026-09-01"),
        deals=(
            won("new_business", 12_000, "2024-09-01"),
            won("renewal", 12_000, "2025-09-01"),
            lost("2026-09-01"),
        ),
    ),
    AccountFacts(
        "E",
        deals=(
            won("new_business", 8_000, "2024-01-10", "core"),
            won("renewal", 8_000, "2025-01-10", "core"),
            lost("2026-01-10", "core"),
            won("new_business", 4_000, "2025-05-01", "analytics"),
            won("renewal", 4_000, "2026-05-01", "analytics"),
            won("new_business", 6_000, "2026-04-01", "ai"),
        ),
    ),
    AccountFacts(
        "F",
        churned_on=D("2024-02-01"),
        deals=(
            won("new_business", 9_000, "2023-02-01"),
            lost("2024-02-01"),
            won("new_business", 7_000, "2026-07-01"),
        ),
    ),
    AccountFacts("G", deals=(won("new_business", 15_000, "2026-03-15"),)),
    AccountFacts("H", arr=6_000, customer_since=D("2022-05-01")),
    AccountFacts(
        "I",
        churned_on=D("2026-04-01"),
        deals=(
            won("new_business", 5_000, "2025-04-01"),
            lost("2026-04-01"),
            won("new_business", 3_000, "2026-08-01"),
        ),
    ),
    AccountFacts(
        "J", churned_on=D("2026-06-30"), deals=(won("new_business", 4_000, "2026-01-05"),)
    ),
)

TRAILING = Period(D("2025-11-01"), D("2026-11-01"), "trailing 12 months to 2026-11-01")
Q1 = Period(D("2026-01-01"), D("2026-04-01"), "2026-Q1")


def test_given_worked_example_when_trailing_12_months_then_figures_of_retention_md():
    # Given the ten accounts of RETENTION.md, when retention runs over [2025-11-01, 2026-11-01)
    r = retention(EXAMPLE, TRAILING)
    # then each account moves as the document's table says
    moves = {m.account_key: (m.kind, m.start_arr, m.end_arr) for m in r.movements}
    assert moves == {
        "A": ("retained", 10_000, 10_000),
        "B": ("expanded", 20_000, 25_000),  # the open expansion does not count
        "C": ("contracted", 30_000, 24_000),
        "D": ("churned", 12_000, 0),
        "E": ("contracted", 12_000, 10_000),  # netted: core -8,000, ai +6,000
        "F": ("reactivated", 0, 7_000),
        "G": ("new", 0, 15_000),
        "H": ("retained", 6_000, 6_000),  # from the arr field: no deals
        "I": ("contracted", 5_000, 3_000),  # churned and came back within the period
    }  # J: won and churned within the period: nowhere
    # and the figures: cohort A B C D E H I; start 95,000; end 78,000
    assert (r.cohort_logos, r.retained_logos, r.churned_logos) == (7, 6, 1)
    assert (r.start_arr, r.end_arr) == (95_000, 78_000)
    # churn 12,000 (D); contraction 6,000 (C) + 2,000 (E) + 2,000 (I); expansion 5,000 (B)
    assert (r.churned_arr, r.contraction_arr, r.expansion_arr) == (12_000, 10_000, 5_000)
    assert r.start_arr - r.churned_arr - r.contraction_arr + r.expansion_arr == r.end_arr
    # GRR 73,000 / 95,000 = 0.76842 -> 0.7684; NRR 78,000 / 95,000 = 0.82105 -> 0.8211;
    # logo retention 6 / 7 = 0.85714 -> 0.8571
    assert (r.grr, r.nrr, r.logo_retention) == (0.7684, 0.8211, 0.8571)
    # and new and reactivated ARR stand beside the cohort, not inside it
    assert (r.new_logos, r.new_arr, r.reactivated_logos, r.reactivated_arr) == (1, 15_000, 1, 7_000)
    assert r.version == VERSION == "retention-v1"


def test_given_worked_example_when_quarter_then_changes_dated_end_belong_to_the_next_one():
    # Given the same accounts, when retention runs over 2026-Q1 = [2026-01-01, 2026-04-01)
    r = retention(EXAMPLE, Q1)
    moves = {m.account_key: (m.kind, m.start_arr, m.end_arr) for m in r.movements}
    # then E's ai sale and I's loss, both dated 2026-04-01 (= end), are not in Q1; F counts nowhere
    assert moves == {
        "A": ("retained", 10_000, 10_000),
        "B": ("expanded", 20_000, 25_000),
        "C": ("retained", 30_000, 30_000),
        "D": ("retained", 12_000, 12_000),
        "E": ("contracted", 12_000, 4_000),
        "G": ("new", 0, 15_000),
        "H": ("retained", 6_000, 6_000),
        "I": ("retained", 5_000, 5_000),
        "J": ("new", 0, 4_000),
    }
    # GRR 87,000 / 95,000 = 0.9158; NRR 92,000 / 95,000 = 0.9684; logos 7 / 7
    assert (r.start_arr, r.end_arr, r.contraction_arr, r.expansion_arr) == (
        95_000,
        92_000,
        8_000,
        5_000,
    )
    assert (r.grr, r.nrr, r.logo_retention) == (0.9158, 0.9684, 1.0)
    assert (r.new_logos, r.new_arr, r.reactivated_logos) == (2, 19_000, 0)


def test_given_default_periods_when_reporting_then_one_result_per_period_same_figures():
    # Given the default retention periods (trailing 12 months, the last 4 quarters)
    report = retention_report(EXAMPLE, D("2026-11-01"), parse_settings({}).retention_periods)
    # then there is one result per period, and those of the worked example are the same
    assert [r.period.label for r in report] == [
        "trailing 12 months to 2026-11-01",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
    ]
    assert report[0] == retention(EXAMPLE, TRAILING)
    assert report[2] == retention(EXAMPLE, Q1)
    # and an account given twice is refused rather than counted twice
    with pytest.raises(ValueError, match="given twice"):
        retention((*EXAMPLE, EXAMPLE[0]), Q1)


def test_given_retention_md_when_reading_its_bold_figures_then_they_are_the_computed_ones():
    # Given the bold figures of RETENTION.md's worked example (GRR, NRR, logo retention per period)
    text = RETENTION_MD.read_text(encoding="utf-8")
    example = text[text.index("## 5. Worked example") :]
    bold = [float(x) for x in re.findall(r"= \*\*([0-9.]+)\*\*", example)]
    # then they are what the code computes, in the document's order
    t, q = retention(EXAMPLE, TRAILING), retention(EXAMPLE, Q1)
    assert bold == [t.grr, t.nrr, t.logo_retention, q.grr, q.nrr, q.logo_retention]
    assert "Version string: `retention-v1`" in text


def test_given_same_day_changes_when_reading_arr_then_the_documented_order_applies():
    # Given, on one day: the same renewal recorded twice (in two CRMs), an expansion on top,
    # and, on another product, a renewal and its loss the same day
    facts = AccountFacts(
        "S",
        deals=(
            won("new_business", 1_000, "2026-01-01", "x"),
            won("renewal", 1_200, "2026-02-01", "x"),
            won("renewal", 1_100, "2026-02-01", "x"),
            won("expansion", 300, "2026-02-01", "x"),
            won("new_business", 500, "2026-01-01", "y"),
            won("renewal", 500, "2026-02-01", "y"),
            lost("2026-02-01", "y"),
        ),
    )
    # then on 2026-02-01 ARR is still the old one (changes apply from the next day)
    assert arr_at(facts, D("2026-02-01")) == 1_500
    # and from 2026-02-02: x = the larger restatement 1,200 + the expansion 300; y = 0
    assert arr_at(facts, D("2026-02-02")) == 1_500
    timeline = arr_timeline(facts)
    assert timeline.days == (D("2026-01-01"), D("2026-02-01"))
    assert timeline.values == (1_500, 1_500)
    # and a churned_on that same day clears everything after the deals
    churned = AccountFacts("S2", churned_on=D("2026-02-01"), deals=facts.deals)
    assert arr_at(churned, D("2026-02-02")) == 0


def test_given_account_without_won_deals_when_reading_arr_then_the_arr_field_between_dates():
    # Given an account with only an open deal, arr 2,400, customer since 2025-03-10, churned
    facts = AccountFacts(
        "K",
        arr=2_400,
        customer_since=D("2025-03-10"),
        churned_on=D("2026-05-20"),
        deals=(DealFact("renewal", 2_400, "open", D("2026-03-10")),),
    )
    # then ARR is the field from the day after customer_since until churned_on
    days = ("2025-03-10", "2025-03-11", "2026-05-20", "2026-05-21")
    assert [arr_at(facts, D(d)) for d in days] == [0, 2_400, 2_400, 0]
    # and without customer_since it was always there (until churned_on)
    always = AccountFacts("L", arr=2_400)
    assert arr_at(always, D("1990-01-01")) == 2_400


def test_given_settings_when_listing_periods_then_trailing_and_complete_quarters():
    # Given as_of mid-quarter, 2026-11-15
    got = periods(
        (
            PeriodSpec("trailing_months", months=12),
            PeriodSpec("quarters", count=2),
            PeriodSpec("range", start=D("2026-01-01"), end=D("2026-07-01")),
        ),
        D("2026-11-15"),
    )
    # then: [2025-11-15, 2026-11-15); the two last complete quarters; the range as given
    assert [(p.start, p.end, p.label) for p in got] == [
        (D("2025-11-15"), D("2026-11-15"), "trailing 12 months to 2026-11-15"),
        (D("2026-04-01"), D("2026-07-01"), "2026-Q2"),
        (D("2026-07-01"), D("2026-10-01"), "2026-Q3"),
        (D("2026-01-01"), D("2026-07-01"), "2026-01-01 to 2026-07-01"),
    ]
    # and a trailing year ending on 29 February starts on 28 February
    assert periods((PeriodSpec("trailing_months", months=12),), D("2028-02-29"))[0].start == D(
        "2027-02-28"
    )


def test_given_world_when_reading_retention_then_churned_logos_are_the_churned_accounts():
    # Given the sandbox's world as facts (deals from HubSpot/Salesforce, else the arr field)
    pairs = list(world(size=600, seed=4))
    label = {f.account_key: lab for lab, f in pairs}
    facts = [f for _, f in pairs]
    # when retention runs over the trailing 12 months to the world's anchor
    r = retention(facts, Period(D("2025-11-01"), WORLD_AS_OF, "t12m"))
    # then the churned logos are exactly the churned-labelled accounts that were customers a
    # year ago (the world churns its accounts 1..120 days before the anchor)
    churned = {m.account_key for m in r.movements if m.kind == "churned"}
    expected = {
        f.account_key
        for f in facts
        if label[f.account_key] == "churned" and arr_at(f, D("2025-11-01")) > 0
    }
    assert churned == expected and len(churned) > 10
    # and no account that is still a customer lost its ARR
    assert all(label[k] == "churned" for k in churned)
    # and a live account's ARR today, read from its deals, is its arr field (the world's
    # renewals restate the base ARR: an expansion counts until the next renewal restates it)
    for f in facts:
        if label[f.account_key] != "churned" and f.arr is not None:
            extra = sum(d.amount for d in f.deals if d.kind == "expansion" and d.stage == "won")
            now = round(arr_at(f, WORLD_AS_OF), 2)
            assert now == f.arr if not extra else f.arr <= now <= round(f.arr + extra, 2), (
                f.account_key
            )


def test_given_floats_in_any_order_when_summed_exactly_then_the_total_is_math_fsum():
    # Given amounts in cents, their differences, and values that cancel (1e16 + 1 - 1e16)
    rng = random.Random(11)
    values = [round(rng.uniform(0, 250_000), 2) for _ in range(2_000)]
    values += [a - b for a, b in zip(values[::2], values[1::2], strict=True)]
    values += [1e16, 1.0, -1e16, 0.1, 0.2, -0.3, 1e-9]
    for _ in range(3):
        rng.shuffle(values)
        # when added one at a time
        running = ExactSum()
        for v in values:
            running.add(v)
        # then the total is math.fsum of them all, bit for bit (not the naive sum)
        assert running.total() == math.fsum(values)
    assert math.fsum([1e16, 1.0, -1e16]) != sum([1e16, 1.0, -1e16])
    assert ExactSum().total() == 0.0


def test_given_accounts_in_any_order_when_tallied_one_at_a_time_then_retention_s_figures():
    # Given the world's accounts' ARR timelines (amounts with cents, churn, new logos) and the
    # worked example's
    lines = {f.account_key: arr_timeline(f) for _, f in world(size=400, seed=9)}
    lines |= {f.account_key: arr_timeline(f) for f in EXAMPLE}
    for period in (Period(D("2025-11-01"), WORLD_AS_OF, "t12m"), TRAILING, Q1):
        expected = retention(lines, period)
        assert expected.cohort_logos and expected.new_logos
        for seed in range(2):
            items = list(lines.items())
            random.Random(seed).shuffle(items)
            # when a tally counts them one at a time, in a shuffled order
            tally = RetentionTally(period)
            moves = [Movement(key, *m) for key, timeline in items if (m := tally.add(timeline))]
            # then its figures are retention's, to the cent, and so are the movements
            assert tally.result() == dataclasses.replace(expected, movements=())
            assert tally.result(moves) == expected
