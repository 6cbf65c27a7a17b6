"""The scoring settings: a plain dict (from settings JSON) parsed and checked into frozen objects.

``parse_settings({})`` gives the documented defaults (``DEFAULT_SETTINGS``, see SCORING.md). A
user's dict is merged onto the defaults: mappings merge key by key, except a signal's
``normalize`` mapping, which replaces the default whole; lists (``bands``, ``segments.rules``,
``retention.periods``) replace the default whole. Every error names the bad key, e.g.
``health.signals.nps.weight: must be >= 0``.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from target_health.scoring.facts import PRIORITIES

#: The signals the engine knows how to read from facts, in the order they are reported.
SIGNALS = (
    "usage_trend",
    "seat_utilisation",
    "ticket_volume",
    "open_ticket_severity",
    "open_ticket_age",
    "csat",
    "nps",
    "engagement_recency",
    "renewal_proximity",
    "payment_issue",
)

#: Signal-specific settings and their defaults (besides weight, normalize and missing).
SIGNAL_PARAMS: dict[str, dict[str, Any]] = {
    "usage_trend": {"months": 3},
    "seat_utilisation": {"lookback_months": 3},
    "ticket_volume": {"window_days": 90},
    "open_ticket_severity": {
        "priority_weights": {"low": 0.25, "medium": 0.5, "high": 1.0, "urgent": 2.0}
    },
    "open_ticket_age": {},
    "csat": {"window_days": 180},
    "nps": {"window_days": 365},
    "engagement_recency": {},
    "renewal_proximity": {},
    "payment_issue": {},
}

DEFAULT_MODEL: dict[str, Any] = {
    "version": "health-v1",
    "signals": {
        # relative change of mean active users: last 3 complete months vs the 3 before
        "usage_trend": {
            "weight": 15,
            "normalize": {"kind": "linear", "bad": -0.3, "good": 0.05},
            "missing": "skip",
            "months": 3,
        },
        # active users / seats in the latest complete month (of the last 3)
        "seat_utilisation": {
            "weight": 20,
            "normalize": {"kind": "linear", "bad": 0.2, "good": 0.8},
            "missing": "skip",
            "lookback_months": 3,
        },
        # tickets opened in the last 90 days
        "ticket_volume": {
            "weight": 5,
            "normalize": {"kind": "linear", "bad": 9, "good": 1},
            "missing": "skip",
            "window_days": 90,
        },
        # sum of priority weights of the tickets open at as_of
        "open_ticket_severity": {
            "weight": 10,
            "normalize": {"kind": "linear", "bad": 3, "good": 0},
            "missing": "skip",
            "priority_weights": {"low": 0.25, "medium": 0.5, "high": 1.0, "urgent": 2.0},
        },
        # age in days of the oldest ticket open at as_of (0 when none is open)
        "open_ticket_age": {
            "weight": 5,
            "normalize": {"kind": "linear", "bad": 50, "good": 10},
            "missing": "skip",
        },
        # mean CSAT (1..5) of the tickets closed in the last 180 days
        "csat": {
            "weight": 10,
            "normalize": {"kind": "linear", "bad": 2, "good": 4.5},
            "missing": "skip",
            "window_days": 180,
        },
        # the account's NPS (-100..100) over the last 365 days
        "nps": {
            "weight": 10,
            "normalize": {"kind": "linear", "bad": -60, "good": 60},
            "missing": "skip",
            "window_days": 365,
        },
        # days since the last engagement
        "engagement_recency": {
            "weight": 10,
            "normalize": {"kind": "linear", "bad": 50, "good": 10},
            "missing": "skip",
        },
        # days until the renewal date (negative: overdue)
        "renewal_proximity": {
            "weight": 5,
            "normalize": {
                "kind": "steps",
                "steps": [
                    {"below": 0, "value": 0.25},
                    {"below": 30, "value": 0.5},
                    {"below": 90, "value": 0.75},
                ],
                "otherwise": 1.0,
            },
            "missing": "skip",
        },
        # 1 when a payment issue is flagged, else 0
        "payment_issue": {
            "weight": 10,
            "normalize": {"kind": "linear", "bad": 1, "good": 0},
            "missing": "skip",
        },
    },
    "bands": [
        {"name": "healthy", "min": 70},
        {"name": "neutral", "min": 50},
        {"name": "at_risk", "min": 30},
        {"name": "critical", "min": 0},
    ],
    "top_factors": 3,
    "trend_days": 30,
    "flat_within": 2.0,
    "min_coverage": 0.25,
}

#: Fields segment rules can test, and the operators each kind of field accepts.
SEGMENT_FIELDS: dict[str, str] = {
    "score": "number",
    "band": "text",
    "trend": "number",
    "trend_previous": "number",
    "nps": "number",
    "nps_responses": "number",
    "utilisation": "number",
    "usage_trend": "number",
    "renewal_days": "number",
    "open_tickets": "number",
    "arr": "number",
    "payment_issue": "bool",
    "churned": "bool",
}
OPERATORS: dict[str, tuple[str, ...]] = {
    "number": ("lt", "lte", "gt", "gte", "eq", "ne", "is_null"),
    "text": ("eq", "ne", "in", "not_in", "is_null"),
    "bool": ("eq", "ne", "is_null"),
}

DEFAULT_SEGMENTS: dict[str, Any] = {
    "rules": [
        {"name": "churned", "when": {"churned": {"eq": True}}},
        {"name": "unscored", "when": {"score": {"is_null": True}}},
        {"name": "churn_risk", "when": {"band": {"eq": "critical"}}},
        {"name": "churn_risk", "when": {"band": {"eq": "at_risk"}, "renewal_days": {"lte": 90}}},
        {"name": "at_risk", "when": {"band": {"eq": "at_risk"}}},
        {"name": "at_risk", "when": {"trend": {"lte": -10}}},
        {
            "name": "expansion_candidate",
            "when": {"band": {"eq": "healthy"}, "utilisation": {"gte": 0.9}},
        },
        {"name": "champion", "when": {"score": {"gte": 80}, "nps": {"gte": 50}}},
    ],
    "default": "stable",
}

DEFAULT_SETTINGS: dict[str, Any] = {
    "health": DEFAULT_MODEL,
    "nps": {"window_days": 365},
    "retention": {
        "periods": [
            {"kind": "trailing_months", "months": 12},
            {"kind": "quarters", "count": 4},
        ]
    },
    "segments": DEFAULT_SEGMENTS,
}


class ModelError(ValueError):
    """A bad scoring setting; the message starts with the dotted path of the key."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


# -- normalisations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Linear:
    """0 at ``bad``, 1 at ``good``, straight in between, clamped outside (either direction)."""

    bad: float
    good: float

    def __call__(self, x: float) -> float:
        t = (x - self.bad) / (self.good - self.bad)
        return min(1.0, max(0.0, t))


@dataclass(frozen=True, slots=True)
class Steps:
    """The value of the first step whose ``below`` the raw value is under, else ``otherwise``."""

    steps: tuple[tuple[float, float], ...]  # (below, value), below increasing
    otherwise: float

    def __call__(self, x: float) -> float:
        for below, value in self.steps:
            if x < below:
                return value
        return self.otherwise


Normalize = Linear | Steps


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: str
    weight: float
    normalize: Normalize
    missing: float | None  # None: skip and re-weight; else the normalised value to use
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Band:
    name: str
    min: float


@dataclass(frozen=True, slots=True)
class HealthModel:
    version: str
    signals: tuple[SignalSpec, ...]  # enabled ones (weight > 0), in SIGNALS order
    bands: tuple[Band, ...]  # best first; the last has min 0
    top_factors: int
    trend_days: int
    flat_within: float
    min_coverage: float

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def band_of(self, score: float) -> str:
        """The first band (best first) whose ``min`` the score reaches: on a threshold, the
        better band."""
        for band in self.bands:
            if score >= band.min:
                return band.name
        return self.bands[-1].name

    def signal(self, name: str) -> SignalSpec | None:
        return next((s for s in self.signals if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class SegmentRule:
    name: str
    conditions: tuple[Condition, ...]  # all must hold; none: always matches


@dataclass(frozen=True, slots=True)
class SegmentRules:
    rules: tuple[SegmentRule, ...]
    default: str


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    kind: str  # trailing_months | quarters | range
    months: int = 12
    count: int = 4
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    health: HealthModel
    nps_window_days: int
    retention_periods: tuple[PeriodSpec, ...]
    segments: SegmentRules


# -- merging ------------------------------------------------------------------------------------


def merge(default: Any, override: Any, *, key: str = "") -> Any:
    """``override`` laid over ``default``: mappings merge key by key (a ``normalize`` mapping
    replaces whole), anything else replaces."""
    if isinstance(default, Mapping) and isinstance(override, Mapping) and key != "normalize":
        out = {k: copy.deepcopy(v) for k, v in default.items()}
        for k, v in override.items():
            out[k] = merge(default[k], v, key=k) if k in default else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


# -- checks -------------------------------------------------------------------------------------


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(path, "must be an object")
    return value


def _keys(value: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    for k in value:
        if k not in allowed:
            raise ModelError(
                f"{path}.{k}" if path else k, f"unknown key; known: {', '.join(allowed)}"
            )


def _number(value: Any, path: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(path, "must be a number")
    if lo is not None and value < lo:
        raise ModelError(path, f"must be >= {lo:g}")
    if hi is not None and value > hi:
        raise ModelError(path, f"must be <= {hi:g}")
    return float(value)


def _integer(value: Any, path: str, *, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(path, "must be an integer")
    if value < lo:
        raise ModelError(path, f"must be >= {lo}")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModelError(path, "must be a non-empty string")
    return value


def _normalize(value: Any, path: str) -> Normalize:
    spec = _mapping(value, path)
    kind = spec.get("kind")
    if kind == "linear":
        _keys(spec, ("kind", "bad", "good"), path)
        for k in ("bad", "good"):
            if k not in spec:
                raise ModelError(f"{path}.{k}", "required for a linear normalisation")
        bad, good = _number(spec["bad"], f"{path}.bad"), _number(spec["good"], f"{path}.good")
        if bad == good:
            raise ModelError(f"{path}.good", "must differ from bad")
        return Linear(bad, good)
    if kind == "steps":
        _keys(spec, ("kind", "steps", "otherwise"), path)
        raw = spec.get("steps")
        if not isinstance(raw, list) or not raw:
            raise ModelError(f"{path}.steps", "must be a non-empty list of {below, value}")
        steps: list[tuple[float, float]] = []
        for i, step in enumerate(raw):
            p = f"{path}.steps[{i}]"
            step = _mapping(step, p)
            _keys(step, ("below", "value"), p)
            below = _number(step.get("below"), f"{p}.below")
            if steps and below <= steps[-1][0]:
                raise ModelError(f"{p}.below", "must be greater than the previous step's")
            steps.append((below, _number(step.get("value"), f"{p}.value", lo=0, hi=1)))
        if "otherwise" not in spec:
            raise ModelError(f"{path}.otherwise", "required for a steps normalisation")
        return Steps(tuple(steps), _number(spec["otherwise"], f"{path}.otherwise", lo=0, hi=1))
    raise ModelError(f"{path}.kind", "must be 'linear' or 'steps'")


def _signal(name: str, value: Any, path: str) -> SignalSpec:
    spec = _mapping(value, path)
    params = SIGNAL_PARAMS[name]
    _keys(spec, ("weight", "normalize", "missing", *params), path)
    for k in ("weight", "normalize"):
        if k not in spec:
            raise ModelError(f"{path}.{k}", "required")
    weight = _number(spec["weight"], f"{path}.weight", lo=0)
    missing_raw = spec.get("missing", "skip")
    missing = (
        None
        if missing_raw == "skip"
        else _number(missing_raw, f"{path}.missing (a value 0..1 or 'skip')", lo=0, hi=1)
    )
    out: dict[str, Any] = {}
    for k, default in params.items():
        v = spec.get(k, default)
        p = f"{path}.{k}"
        if k == "priority_weights":
            v = merge(default, _mapping(v, p))
            _keys(v, PRIORITIES, p)
            out[k] = {pk: _number(pv, f"{p}.{pk}", lo=0) for pk, pv in v.items()}
        else:
            out[k] = _integer(v, p, lo=1)
    return SignalSpec(
        name, weight, _normalize(spec["normalize"], f"{path}.normalize"), missing, out
    )


def _fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def parse_model(model: Mapping[str, Any] | None = None, *, path: str = "health") -> HealthModel:
    """Check a health model given as a dict (merged onto ``DEFAULT_MODEL``).

    The version is the model's ``version``; when a dict changes the defaults without naming its
    own version, it becomes ``health-v1+<8 hex digits of the effective model>``, so scores of
    different models never share a version.
    """
    given = _mapping(model or {}, path)
    _keys(given, tuple(DEFAULT_MODEL), path)
    eff = merge(DEFAULT_MODEL, given)
    version = _text(eff["version"], f"{path}.version")
    if "version" not in given and eff != DEFAULT_MODEL:
        version = f"{DEFAULT_MODEL['version']}+{_fingerprint(eff)}"
    signals_map = _mapping(eff["signals"], f"{path}.signals")
    _keys(signals_map, SIGNALS, f"{path}.signals")
    signals = tuple(
        _signal(name, signals_map[name], f"{path}.signals.{name}")
        for name in SIGNALS
        if name in signals_map
    )
    enabled = tuple(s for s in signals if s.weight > 0)
    if not enabled:
        raise ModelError(f"{path}.signals", "at least one signal needs a weight > 0")

    raw_bands = eff["bands"]
    if not isinstance(raw_bands, list) or not raw_bands:
        raise ModelError(f"{path}.bands", "must be a non-empty list of {name, min}, best first")
    bands: list[Band] = []
    for i, raw in enumerate(raw_bands):
        p = f"{path}.bands[{i}]"
        b = _mapping(raw, p)
        _keys(b, ("name", "min"), p)
        name = _text(b.get("name"), f"{p}.name")
        low = _number(b.get("min"), f"{p}.min", lo=0, hi=100)
        if any(x.name == name for x in bands):
            raise ModelError(f"{p}.name", f"duplicate band {name!r}")
        if bands and low >= bands[-1].min:
            raise ModelError(f"{p}.min", "must be lower than the previous band's (best first)")
        bands.append(Band(name, low))
    if bands[-1].min != 0:
        raise ModelError(f"{path}.bands[{len(bands) - 1}].min", "the last band must have min 0")

    return HealthModel(
        version=version,
        signals=enabled,
        bands=tuple(bands),
        top_factors=_integer(eff["top_factors"], f"{path}.top_factors", lo=0),
        trend_days=_integer(eff["trend_days"], f"{path}.trend_days", lo=1),
        flat_within=_number(eff["flat_within"], f"{path}.flat_within", lo=0),
        min_coverage=_number(eff["min_coverage"], f"{path}.min_coverage", lo=0, hi=1),
    )


def _condition(field: str, value: Any, path: str) -> Condition:
    if field not in SEGMENT_FIELDS:
        raise ModelError(path, f"unknown field; known: {', '.join(SEGMENT_FIELDS)}")
    spec = _mapping(value, path)
    if len(spec) != 1:
        raise ModelError(path, 'must hold exactly one operator, e.g. {"gte": 80}')
    [(op, operand)] = spec.items()
    kind = SEGMENT_FIELDS[field]
    if op not in OPERATORS[kind]:
        raise ModelError(f"{path}.{op}", f"unknown operator; known: {', '.join(OPERATORS[kind])}")
    p = f"{path}.{op}"
    if op == "is_null" or kind == "bool":
        if not isinstance(operand, bool):
            raise ModelError(p, "must be true or false")
    elif op in ("in", "not_in"):
        if not isinstance(operand, list) or not all(isinstance(x, str) for x in operand):
            raise ModelError(p, "must be a list of strings")
        operand = tuple(operand)
    elif kind == "text":
        operand = _text(operand, p)
    else:
        operand = _number(operand, p)
    return Condition(field, op, operand)


def parse_segments(
    value: Mapping[str, Any] | None = None, *, path: str = "segments"
) -> SegmentRules:
    """Check segment rules (merged onto ``DEFAULT_SEGMENTS``; a ``rules`` list replaces whole)."""
    given = _mapping(value or {}, path)
    _keys(given, ("rules", "default"), path)
    eff = merge(DEFAULT_SEGMENTS, given)
    raw_rules = eff["rules"]
    if not isinstance(raw_rules, list):
        raise ModelError(f"{path}.rules", "must be a list of {name, when}")
    rules: list[SegmentRule] = []
    for i, raw in enumerate(raw_rules):
        p = f"{path}.rules[{i}]"
        r = _mapping(raw, p)
        _keys(r, ("name", "when"), p)
        when = _mapping(r.get("when", {}), f"{p}.when")
        conditions = tuple(_condition(f, v, f"{p}.when.{f}") for f, v in when.items())
        rules.append(SegmentRule(_text(r.get("name"), f"{p}.name"), conditions))
    return SegmentRules(tuple(rules), _text(eff["default"], f"{path}.default"))


def _date(value: Any, path: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ModelError(path, "must be a date YYYY-MM-DD") from None


def _periods(value: Any, path: str) -> tuple[PeriodSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ModelError(path, "must be a non-empty list of periods")
    out: list[PeriodSpec] = []
    for i, raw in enumerate(value):
        p = f"{path}[{i}]"
        spec = _mapping(raw, p)
        kind = spec.get("kind")
        if kind == "trailing_months":
            _keys(spec, ("kind", "months"), p)
            out.append(
                PeriodSpec(kind, months=_integer(spec.get("months", 12), f"{p}.months", lo=1))
            )
        elif kind == "quarters":
            _keys(spec, ("kind", "count"), p)
            out.append(PeriodSpec(kind, count=_integer(spec.get("count", 4), f"{p}.count", lo=1)))
        elif kind == "range":
            _keys(spec, ("kind", "start", "end"), p)
            start, end = _date(spec.get("start"), f"{p}.start"), _date(spec.get("end"), f"{p}.end")
            if end <= start:
                raise ModelError(f"{p}.end", "must be after start")
            out.append(PeriodSpec(kind, start=start, end=end))
        else:
            raise ModelError(f"{p}.kind", "must be 'trailing_months', 'quarters' or 'range'")
    return tuple(out)


def parse_settings(settings: Mapping[str, Any] | None = None) -> ScoringSettings:
    """Check the whole scoring settings dict: ``health``, ``nps``, ``retention``, ``segments``."""
    given = _mapping(settings or {}, "settings")
    _keys(given, tuple(DEFAULT_SETTINGS), "")
    nps = merge(DEFAULT_SETTINGS["nps"], _mapping(given.get("nps", {}), "nps"))
    _keys(nps, ("window_days",), "nps")
    retention = merge(
        DEFAULT_SETTINGS["retention"], _mapping(given.get("retention", {}), "retention")
    )
    _keys(retention, ("periods",), "retention")
    return ScoringSettings(
        health=parse_model(given.get("health")),
        nps_window_days=_integer(nps["window_days"], "nps.window_days", lo=1),
        retention_periods=_periods(retention["periods"], "retention.periods"),
        segments=parse_segments(given.get("segments")),
    )
