"""The decision log: every decision recorded, hash-chained, before the request proceeds.

Built on eventsourcing. `open_log(url)` opens a `DecisionLog` (the engine's recorder) on
a store named by URL: `sqlite:///path`, `postgresql://…`, or `memory://`.
"""

from __future__ import annotations

from subguard.log._decisionlog import ApprovalOutcome, DecisionLog, open_log
from subguard.log._events import SCHEMA_VERSION, Topic
from subguard.log._read import LogRecord, follow, ocsf_event, parse_duration, read_records, since_ns
from subguard.log._state import ApprovalState
from subguard.log._store import Store, open_store
from subguard.log._verify import Problem, VerifyReport, verify_store

__all__ = [
    "SCHEMA_VERSION",
    "ApprovalOutcome",
    "ApprovalState",
    "DecisionLog",
    "LogRecord",
    "Problem",
    "Store",
    "Topic",
    "VerifyReport",
    "follow",
    "ocsf_event",
    "open_log",
    "open_store",
    "parse_duration",
    "read_records",
    "since_ns",
    "verify_store",
]
