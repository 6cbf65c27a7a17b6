"""The fields target-health owns in each CRM, as data.

Eight logical fields, keyed as plans name them. Each CRM's ``writer.py`` (in its connector
folder) defines them under its own API names and types, creates them, writes them, and never
touches any other field; the canonical form of their values is crm_connectors.fields'.

========================  =========================================================
logical key (kind)        meaning
========================  =========================================================
score (number 0..100)     the health score, one decimal
band (enum)               the score's band: the default model's bands
trend (number, points)    change of the score against 30 days ago
factors (text <= 255)     the factors that moved the score most, in words
segment (enum)            the customer-success segment: the default model's segments
nps (number -100..100)    the customer's NPS
model_version (text <=64) the health model that computed these values
updated_at (datetime)     when target-health last changed these values
========================  =========================================================

Why these kinds:

- **Numbers with one decimal.** Scores, trends and NPS are rounded to 0.1 by the scoring engine,
  and every value is rounded to one decimal *before* it is sent: a CRM that rounds on save then
  returns exactly what was sent, and a rerun plans no change.
- **Bands and segments as pick lists** so customer-success teams can filter and report on them.
  The options are the default model's bands and segments (scoring/model.py); a value outside
  them is refused before any call, as a CRM's restricted pick list would.
- **Top factors as short text** (<= 255 characters, filterable in every CRM). Longer text is cut
  to 254 characters and an ellipsis.
- **Updated-at as a datetime**, canonically ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds).

Plans compare ``normalize(key, desired)`` with what a writer's ``read`` returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_connectors.fields import Field, InvalidValue
from crm_connectors.fields import normalize as _normalize

from ..scoring.model import DEFAULT_MODEL, DEFAULT_SEGMENTS

__all__ = ["BANDS", "BY_KEY", "FIELDS", "SEGMENTS", "Field", "InvalidValue", "normalize"]

#: The default model's band names, best first (scoring/model.py).
BANDS: tuple[str, ...] = tuple(str(b["name"]) for b in DEFAULT_MODEL["bands"])
#: The default segment names: the rules' names in order, then the default.
SEGMENTS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*(str(r["name"]) for r in DEFAULT_SEGMENTS["rules"]), DEFAULT_SEGMENTS["default"]]
    )
)

FIELDS: tuple[Field, ...] = (
    Field("score", "Health score", "number",
          "Customer health score, 0 (worst) to 100 (best), from target-health.", low=0, high=100),
    Field("band", "Health band", "enum",
          "Health band of the score: healthy, neutral, at_risk or critical.", options=BANDS),
    Field("trend", "Health trend", "number",
          "Change of the health score in points against 30 days ago.", low=-100, high=100),
    Field("factors", "Health top factors", "text",
          "The factors that moved the health score most, in words.", max_length=255),
    Field("segment", "Health segment", "enum",
          "Customer-success segment from target-health (churn_risk, expansion_candidate, ...).",
          options=SEGMENTS),
    Field("nps", "NPS", "number",
          "Net Promoter Score of the customer's survey responses, -100 to 100.",
          low=-100, high=100),
    Field("model_version", "Health model version", "text",
          "Version of the health model that computed these values.", max_length=64),
    Field("updated_at", "Health updated at", "datetime",
          "When target-health last changed these values."),
)  # fmt: skip
BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}


def normalize(key: str, value: Any) -> Any:
    """``value`` in the canonical form of owned field ``key``; raises InvalidValue when it
    cannot be written, and KeyError for a field not owned."""
    return _normalize(BY_KEY[key], value)


def to_canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of a ``{key: value}`` change in canonical form (see :func:`normalize`)."""
    return {k: normalize(k, v) for k, v in values.items()}
