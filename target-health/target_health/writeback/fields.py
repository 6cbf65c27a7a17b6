"""The fields target-health owns in each CRM, as data, and the one canonical form of their values.

Eight logical fields, keyed as plans name them (``score``, ``band``, ...), each defined once in
each CRM under its own API name. target-health creates them (``crm.CrmWriter.ensure_fields``),
writes them, and never touches any other field.

========================  =======================  ========================  ======================
logical key (kind)        HubSpot company property Salesforce Account field  Intercom company attr.
========================  =======================  ========================  ======================
score (number 0..100)     chs_health_score number  Health_Score__c           health_score float
                                                   Number(5,1)
band (enum)               chs_health_band          Health_Band__c            health_band options
                          enumeration/select       Picklist (restricted)
trend (number, points)    chs_health_trend number  Health_Trend__c           health_trend float
                                                   Number(5,1)
factors (text <= 255)     chs_top_factors string   Health_Top_Factors__c     health_top_factors
                                                   Text(255)                 string
segment (enum)            chs_segment enumeration  Health_Segment__c         health_segment options
                                                   Picklist (restricted)
nps (number -100..100)    chs_nps number           Health_NPS__c Number(5,1) health_nps float
model_version (text <=64) chs_model_version string Health_Model_Version__c   health_model_version
                                                   Text(64)                  string
updated_at (datetime)     chs_updated_at datetime  Health_Updated_At__c      health_updated_at
                                                   DateTime                  date (unix seconds)
========================  =======================  ========================  ======================

Why these types:

- **Numbers with one decimal.** Scores, trends and NPS are rounded to 0.1 by the scoring engine;
  Salesforce ``Number(5,1)`` holds -9999.9..9999.9 and rounds extra decimals on save, so every
  value is rounded to one decimal *before* it is sent: what is read back then equals what was
  sent in all three CRMs, and a rerun plans no change.
- **Bands and segments as pick lists** (HubSpot enumeration, Salesforce restricted picklist,
  Intercom list attribute) so customer-success teams can filter and report on them. The options
  are the default model's bands and segments (scoring/model.py); a value outside them is refused
  here, before any call, as it would be by HubSpot and a restricted picklist.
- **Top factors as short text** (<= 255 characters: Salesforce ``Text(255)`` is filterable,
  unlike a long text area; HubSpot and Intercom strings take more). Longer text is cut to 254
  characters and an ellipsis.
- **Updated-at as a datetime**, canonically ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds:
  Intercom's date attributes hold unix seconds). Intercom's ``date`` type is its timestamp type
  (built-in ``created_at`` is reported as ``date`` too).
- Names: HubSpot properties carry a ``chs_`` prefix in their own group ``customer_health``
  ("Customer health"); Salesforce custom fields ``Health_*__c``; Intercom ``health_*``.

**Canonical values.** :func:`normalize` turns a value into the form every adapter writes and
``read`` returns: numbers as ``float`` rounded to their decimals, enumerations and text as
``str``, datetimes as the ISO text above, and ``None`` for empty ("" and None both clear a
field). Plans should compare ``normalize(key, desired)`` with what ``read`` returned.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..scoring.model import DEFAULT_MODEL, DEFAULT_SEGMENTS

Kind = Literal["number", "enum", "text", "datetime"]
CRMS = ("hubspot", "salesforce", "intercom")

#: The default model's band names, best first (scoring/model.py).
BANDS: tuple[str, ...] = tuple(str(b["name"]) for b in DEFAULT_MODEL["bands"])
#: The default segment names: the rules' names in order, then the default.
SEGMENTS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*(str(r["name"]) for r in DEFAULT_SEGMENTS["rules"]), DEFAULT_SEGMENTS["default"]]
    )
)

HUBSPOT_GROUP = "customer_health"
HUBSPOT_GROUP_LABEL = "Customer health"


class InvalidValue(ValueError):
    """A value that cannot be written to a field; the message names the field, never the value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Field:
    """One logical field target-health owns."""

    key: str
    label: str
    kind: Kind
    description: str
    options: tuple[str, ...] = ()  # enum
    low: float | None = None  # number bounds, inclusive
    high: float | None = None
    decimals: int = 1  # numbers are rounded to this many decimals
    max_length: int = 255  # text


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


# -- per CRM -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrmField:
    """A logical field as defined in one CRM: its API name and its type in the CRM's words."""

    crm: str
    field: Field
    name: str
    type: str

    @property
    def key(self) -> str:
        return self.field.key

    @property
    def label(self) -> str:
        return self.field.label

    def definition(self) -> dict[str, Any]:
        """The body that creates this field through the CRM's API."""
        return _DEFINE[self.crm](self)

    def describe(self) -> str:
        """One line for a person creating the field by hand."""
        text = f"{self.name} (label {self.label!r}, type {self.type}"
        if self.field.options:
            text += f", options {', '.join(self.field.options)}"
        return text + ")"


def _sf_type(f: Field) -> str:
    return {
        "number": "Number(5,1)",
        "enum": "Picklist (restricted)",
        "text": f"Text({f.max_length})",
        "datetime": "DateTime",
    }[f.kind]


_HUBSPOT_TYPE = {
    "number": "number",
    "enum": "enumeration",
    "text": "string",
    "datetime": "datetime",
}
_HUBSPOT_FIELD_TYPE = {"number": "number", "enum": "select", "text": "text", "datetime": "date"}
_INTERCOM_TYPE = {"number": "float", "enum": "options", "text": "string", "datetime": "date"}

_NAMES: dict[str, dict[str, str]] = {
    "hubspot": {
        "score": "chs_health_score", "band": "chs_health_band", "trend": "chs_health_trend",
        "factors": "chs_top_factors", "segment": "chs_segment", "nps": "chs_nps",
        "model_version": "chs_model_version", "updated_at": "chs_updated_at",
    },
    "salesforce": {
        "score": "Health_Score__c", "band": "Health_Band__c", "trend": "Health_Trend__c",
        "factors": "Health_Top_Factors__c", "segment": "Health_Segment__c",
        "nps": "Health_NPS__c", "model_version": "Health_Model_Version__c",
        "updated_at": "Health_Updated_At__c",
    },
    "intercom": {
        "score": "health_score", "band": "health_band", "trend": "health_trend",
        "factors": "health_top_factors", "segment": "health_segment", "nps": "health_nps",
        "model_version": "health_model_version", "updated_at": "health_updated_at",
    },
}  # fmt: skip


def _crm_type(crm: str, f: Field) -> str:
    if crm == "hubspot":
        return _HUBSPOT_TYPE[f.kind]
    if crm == "salesforce":
        return _sf_type(f)
    return _INTERCOM_TYPE[f.kind]


#: The owned fields of each CRM, in FIELDS order.
OWNED: dict[str, tuple[CrmField, ...]] = {
    crm: tuple(CrmField(crm, f, _NAMES[crm][f.key], _crm_type(crm, f)) for f in FIELDS)
    for crm in CRMS
}


def _hubspot_definition(cf: CrmField) -> dict[str, Any]:
    # PropertyCreate: name, label, type, fieldType, groupName required [CRM-API.md §1.7].
    body: dict[str, Any] = {
        "name": cf.name,
        "label": cf.label,
        "type": _HUBSPOT_TYPE[cf.field.kind],
        "fieldType": _HUBSPOT_FIELD_TYPE[cf.field.kind],
        "groupName": HUBSPOT_GROUP,
        "description": cf.field.description,
        "formField": False,
    }
    if cf.field.options:
        body["options"] = [
            {"label": o, "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(cf.field.options)
        ]
    return body


def _salesforce_definition(cf: CrmField) -> dict[str, Any]:
    # Tooling API CustomField: FullName "Account.X__c" + Metadata [CRM-API.md §2.10].
    f = cf.field
    meta: dict[str, Any] = {"label": f.label, "description": f.description}
    if f.kind == "number":
        meta |= {"type": "Number", "precision": 5, "scale": f.decimals}
    elif f.kind == "enum":
        meta |= {
            "type": "Picklist",
            "valueSet": {
                "restricted": True,
                "valueSetDefinition": {
                    "sorted": False,
                    "value": [{"fullName": o, "label": o, "default": False} for o in f.options],
                },
            },
        }
    elif f.kind == "text":
        meta |= {"type": "Text", "length": f.max_length}
    else:
        meta |= {"type": "DateTime"}
    return {"FullName": f"Account.{cf.name}", "Metadata": meta}


def _intercom_definition(cf: CrmField) -> dict[str, Any]:
    # POST /data_attributes: name, model, data_type (+ options for a list) [CRM-API.md §3.6].
    body: dict[str, Any] = {
        "name": cf.name,
        "model": "company",
        "data_type": _INTERCOM_TYPE[cf.field.kind],
        "description": cf.field.description,
        "messenger_writable": False,
    }
    if cf.field.options:
        body["options"] = [{"value": o} for o in cf.field.options]
    return body


_DEFINE = {
    "hubspot": _hubspot_definition,
    "salesforce": _salesforce_definition,
    "intercom": _intercom_definition,
}


# -- canonical values ----------------------------------------------------------------------------


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":" and text[-4:].isdigit():
            text = text[:-2] + ":" + text[-2:]  # +0000 (Salesforce) -> +00:00 for Python 3.10
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def iso_seconds(when: dt.datetime) -> str:
    """``2026-01-02T03:04:05Z``: the canonical datetime text."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_seconds(text: str) -> int:
    """Unix seconds of a datetime text (canonical or any ISO 8601 form)."""
    when = _parse_time(text)
    if when is None:
        raise ValueError("not an ISO 8601 datetime")
    return int(when.timestamp())


def normalize(key: str, value: Any) -> Any:
    """``value`` in the canonical form of field ``key`` (see the module doc); raises
    :class:`InvalidValue` when it cannot be written, and KeyError for a field not owned."""
    f = BY_KEY[key]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if f.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InvalidValue(key, "not a number")
        try:
            number = float(value)
        except ValueError:
            raise InvalidValue(key, "not a number") from None
        if not math.isfinite(number):
            raise InvalidValue(key, "not a finite number")
        number = round(number, f.decimals) + 0.0  # + 0.0: no negative zero
        if (f.low is not None and number < f.low) or (f.high is not None and number > f.high):
            raise InvalidValue(key, f"outside {f.low:g}..{f.high:g}")
        return number
    if f.kind == "enum":
        if not isinstance(value, str) or value not in f.options:
            raise InvalidValue(key, f"not one of the options {', '.join(f.options)}")
        return value
    if f.kind == "text":
        if not isinstance(value, str):
            raise InvalidValue(key, "not text")
        return value if len(value) <= f.max_length else value[: f.max_length - 1] + "…"
    when = _parse_time(value)
    if when is None:
        raise InvalidValue(key, "not an ISO 8601 datetime")
    return iso_seconds(when)


def from_crm(cf: CrmField, raw: Any) -> Any:
    """A value as the CRM returned it, in canonical form. Lenient: a value that does not fit
    the field (a person typed it, or the CRM's definition drifted) comes back as it is, so a
    plan sees the difference and overwrites it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = cf.field.kind
    if kind == "number" and not isinstance(raw, bool):
        try:
            number = float(raw)  # HubSpot returns numbers as text
        except (TypeError, ValueError):
            return raw
        return round(number, cf.field.decimals) + 0.0 if math.isfinite(number) else raw
    if kind == "datetime":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            # Intercom date attributes hold unix seconds.
            return iso_seconds(dt.datetime.fromtimestamp(int(raw), tz=dt.timezone.utc))
        when = _parse_time(raw)
        return iso_seconds(when) if when is not None else raw
    return raw


def to_canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of a ``{key: value}`` change in canonical form (see :func:`normalize`)."""
    return {k: normalize(k, v) for k, v in values.items()}
