"""The scoring engine of target-health: health scores, NPS, retention, segments and backtests.

Pure Python over :mod:`target_health.scoring.facts` (assembled by the caller from the store);
settings are plain dicts checked by :mod:`target_health.scoring.model`. See SCORING.md and
RETENTION.md next to the package.
"""

from __future__ import annotations

from target_health.scoring.backtest import Backtest, BandMetrics, Case, auc, backtest, cases_at
from target_health.scoring.facts import AccountFacts, DealFact, NpsFact, TicketFact, UsageMonth
from target_health.scoring.health import Factor, HealthScore, Trend, score_account, score_accounts
from target_health.scoring.model import (
    DEFAULT_MODEL,
    DEFAULT_SETTINGS,
    HealthModel,
    ModelError,
    ScoringSettings,
    parse_model,
    parse_settings,
)
from target_health.scoring.nps import NpsReport, NpsResult, account_nps, nps_report
from target_health.scoring.retention import (
    Period,
    Retention,
    arr_at,
    arr_timeline,
    periods,
    retention,
    retention_report,
)
from target_health.scoring.segments import Segment, assign_segment, segment_fields, segment_of

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SETTINGS",
    "AccountFacts",
    "Backtest",
    "BandMetrics",
    "Case",
    "DealFact",
    "Factor",
    "HealthModel",
    "HealthScore",
    "ModelError",
    "NpsFact",
    "NpsReport",
    "NpsResult",
    "Period",
    "Retention",
    "ScoringSettings",
    "Segment",
    "TicketFact",
    "Trend",
    "UsageMonth",
    "account_nps",
    "arr_at",
    "arr_timeline",
    "assign_segment",
    "auc",
    "backtest",
    "cases_at",
    "nps_report",
    "parse_model",
    "parse_settings",
    "periods",
    "retention",
    "retention_report",
    "score_account",
    "score_accounts",
    "segment_fields",
    "segment_of",
]
