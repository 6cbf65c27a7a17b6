"""Scoring settings: an empty dict gives the documented defaults, a partial dict merges onto
them, and every bad value is refused with the dotted path of its key (SCORING.md, "Settings")."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from target_health.scoring.model import (
    DEFAULT_MODEL,
    DEFAULT_SETTINGS,
    SIGNALS,
    ModelError,
    parse_model,
    parse_settings,
)
from target_health.scoring.retention import periods

SCORING_MD = Path(__file__).parents[1] / "target-health" / "SCORING.md"


def test_given_empty_settings_when_parsing_then_the_documented_defaults() -> None:
    # Given no settings at all
    settings = parse_settings({})
    # then the health model is the default one, every signal on, weights summing to 100
    health = settings.health
    assert health.version == "health-v1"
    assert [s.name for s in health.signals] == list(SIGNALS)
    assert sum(s.weight for s in health.signals) == 100
    assert [(b.name, b.min) for b in health.bands] == [
        ("healthy", 70),
        ("neutral", 50),
        ("at_risk", 30),
        ("critical", 0),
    ]
    assert (health.top_factors, health.trend_days, health.min_coverage) == (3, 30, 0.25)
    # and NPS, retention periods and segments have their defaults
    assert settings.nps_window_days == 365
    labels = [p.label for p in periods(settings.retention_periods, dt.date(2026, 11, 1))]
    assert labels == [
        "trailing 12 months to 2026-11-01",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
    ]
    assert settings.segments.default == "stable"
    assert settings.segments.rules[0].name == "churned"
    # and parsing did not touch the module's defaults
    assert parse_settings(copy.deepcopy(DEFAULT_SETTINGS)) == settings


def test_given_signal_table_in_scoring_md_then_it_matches_the_default_weights() -> None:
    # Given SCORING.md's signal table, when reading each row's weight (its last cell)
    text = SCORING_MD.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \|.*\| (\d+) \|$", text, flags=re.MULTILINE))
    # then every default signal is documented with its default weight
    assert {k: int(v) for k, v in rows.items()} == {
        name: spec["weight"] for name, spec in DEFAULT_MODEL["signals"].items()
    }


def test_given_partial_settings_when_parsing_then_they_merge_onto_the_defaults() -> None:
    # Given settings that change one weight and one normalisation bound
    model = parse_model(
        {
            "signals": {
                "nps": {"weight": 0},
                "csat": {"normalize": {"kind": "linear", "bad": 1, "good": 5}},
            }
        }
    )
    # then NPS is off, CSAT's normalisation replaced whole, everything else as before
    names = [s.name for s in model.signals]
    assert "nps" not in names and len(names) == len(SIGNALS) - 1
    csat = model.signal("csat")
    assert csat is not None and (csat.normalize(1), csat.normalize(3), csat.normalize(5)) == (
        0.0,
        0.5,
        1.0,
    )
    assert csat.weight == 10 and csat.params == {"window_days": 180}
    # and the version says the model is not the default one, stably
    linear_1_5 = {"kind": "linear", "bad": 1, "good": 5}
    again = parse_model({"signals": {"csat": {"normalize": linear_1_5}, "nps": {"weight": 0}}})
    assert model.version == again.version != "health-v1"
    # and a version given by the user is kept as is
    assert parse_model({"version": "ours-3", "signals": {"nps": {"weight": 0}}}).version == "ours-3"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"health": {"signals": {"nps": {"weight": -1}}}}, "health.signals.nps.weight: must be >= 0"),
    ({"health": {"signals": {"nsp": {"weight": 1}}}}, "health.signals.nsp: unknown key"),
    ({"health": {"signals": {"csat": {"wieght": 1}}}}, "health.signals.csat.wieght: unknown key"),
    (
        {"health": {"signals": {"csat": {"normalize": {"kind": "linear", "bad": 2, "good": 2}}}}},
        "health.signals.csat.normalize.good: must differ from bad",
    ),
    (
        {"health": {"signals": {"csat": {"normalize": {"kind": "log"}}}}},
        "health.signals.csat.normalize.kind: must be 'linear' or 'steps'",
    ),
    (
        {
            "health": {
                "signals": {
                    "renewal_proximity": {
                        "normalize": {
                            "kind": "steps",
                            "steps": [{"below": 30, "value": 0.5}, {"below": 10, "value": 0.2}],
                            "otherwise": 1,
                        }
                    }
                }
            }
        },
        "health.signals.renewal_proximity.normalize.steps[1].below: must be greater",
    ),
    (
        {"health": {"signals": {"nps": {"missing": 2}}}},
        "health.signals.nps.missing (a value 0..1 or 'skip'): must be <= 1",
    ),
    (
        {"health": {"signals": {"ticket_volume": {"window_days": 0}}}},
        "health.signals.ticket_volume.window_days: must be >= 1",
    ),
    (
        {"health": {"signals": {"open_ticket_severity": {"priority_weights": {"blocker": 3}}}}},
        "health.signals.open_ticket_severity.priority_weights.blocker: unknown key",
    ),
    (
        {"health": {"signals": {n: {"weight": 0} for n in SIGNALS}}},
        "health.signals: at least one signal needs a weight > 0",
    ),
    (
        {"health": {"bands": [{"name": "good", "min": 50}, {"name": "bad", "min": 60}]}},
        "health.bands[1].min: must be lower than the previous band's",
    ),
    (
        {"health": {"bands": [{"name": "good", "min": 50}, {"name": "bad", "min": 10}]}},
        "health.bands[1].min: the last band must have min 0",
    ),
    ({"health": {"bands": [{"name": "x", "min": 0}, {"name": "x", "min": 0}]}}, "duplicate"),
    ({"health": {"top_factors": "3"}}, "health.top_factors: must be an integer"),
    ({"health": {"min_coverage": 1.5}}, "health.min_coverage: must be <= 1"),
    ({"nps": {"window_days": 0}}, "nps.window_days: must be >= 1"),
    ({"retention": {"periods": [{"kind": "weekly"}]}}, "retention.periods[0].kind: must be"),
    (
        {"retention": {"periods": [{"kind": "range", "start": "2026-01-01", "end": "2025-01-01"}]}},
        "retention.periods[0].end: must be after start",
    ),
    (
        {"segments": {"rules": [{"name": "x", "when": {"scroe": {"gt": 1}}}]}},
        "segments.rules[0].when.scroe: unknown field",
    ),
    (
        {"segments": {"rules": [{"name": "x", "when": {"score": {"in": [1]}}}]}},
        "segments.rules[0].when.score.in: unknown operator",
    ),
    (
        {"segments": {"rules": [{"name": "x", "when": {"band": {"in": "healthy"}}}]}},
        "segments.rules[0].when.band.in: must be a list of strings",
    ),
    ({"scoring": {}}, "scoring: unknown key"),
]


@pytest.mark.parametrize(("settings", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_given_bad_setting_when_parsing_then_error_names_the_key(
    settings: dict[str, Any], message: str
) -> None:
    # Given a bad setting, when the settings are parsed, then the error names its key
    with pytest.raises(ModelError) as caught:
        parse_settings(settings)
    assert message in str(caught.value)
