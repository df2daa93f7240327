"""Policy, Engine and the request and decision types: where rules meet facts."""

from subguard.engine.decision import DECISION_RULES, Combined, Outputs, combine
from subguard.engine.engine import Engine, build_input
from subguard.engine.policy import (
    INPUT_SCHEMA,
    Policy,
    find_policy_files,
    load_policy,
    policy_from_sources,
)
from subguard.engine.recorder import CheckContext, Preflight, Recorder
from subguard.engine.types import (
    CommandRequest,
    Decision,
    Effect,
    EvalError,
    HttpRequest,
    Reason,
    Request,
    Resource,
    SqlRequest,
    Subject,
)

__all__ = [
    "DECISION_RULES",
    "INPUT_SCHEMA",
    "CheckContext",
    "Combined",
    "CommandRequest",
    "Decision",
    "Effect",
    "Engine",
    "EvalError",
    "HttpRequest",
    "Outputs",
    "Policy",
    "Preflight",
    "Reason",
    "Recorder",
    "Request",
    "Resource",
    "SqlRequest",
    "Subject",
    "build_input",
    "combine",
    "find_policy_files",
    "load_policy",
    "policy_from_sources",
]
