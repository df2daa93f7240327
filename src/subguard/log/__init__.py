"""The decision log: every decision recorded, hash-chained, before the request proceeds.

Built on eventsourcing. `open_log(url)` opens a `DecisionLog` (the engine's recorder) on
a store named by URL: `sqlite:///path`, `postgresql://…`, or `memory://`.
"""

from __future__ import annotations

import logging

from subguard.log._decisionlog import ApprovalOutcome, DecisionLog, open_log
from subguard.log._events import SCHEMA_VERSION, Topic, format_time
from subguard.log._read import LogRecord, follow, ocsf_event, parse_duration, read_records, since_ns
from subguard.log._reports import (
    BacktestChange,
    BacktestReport,
    RecordLinker,
    SessionSummary,
    backtest,
    fold_sessions,
    session_timeline,
)
from subguard.log._state import ApprovalState, ApprovalStatus
from subguard.log._store import Store, open_store
from subguard.log._verify import Anchor, Problem, VerifyReport, verify_store

# A library logs, the application decides where it goes: fail-closed commits, follower
# outages and recoveries are logged under `subguard.log` (see docs/log.md).
logging.getLogger("subguard.log").addHandler(logging.NullHandler())

__all__ = [
    "SCHEMA_VERSION",
    "Anchor",
    "ApprovalOutcome",
    "ApprovalState",
    "ApprovalStatus",
    "BacktestChange",
    "BacktestReport",
    "DecisionLog",
    "LogRecord",
    "Problem",
    "RecordLinker",
    "SessionSummary",
    "Store",
    "Topic",
    "VerifyReport",
    "backtest",
    "fold_sessions",
    "follow",
    "format_time",
    "ocsf_event",
    "open_log",
    "open_store",
    "parse_duration",
    "read_records",
    "session_timeline",
    "since_ns",
    "verify_store",
]
