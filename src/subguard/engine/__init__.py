"""Policy, Engine and the request and decision types: where rules meet facts."""

from subguard.engine.decision import DECISION_RULES, Combined, Outputs, combine
from subguard.engine.engine import CheckBatch, Engine
from subguard.engine.inputs import (
    SESSION_FIELDS,
    build_input,
    request_of,
    resource_of,
    session_document,
    subject_of,
)
from subguard.engine.policy import (
    INPUT_SCHEMA,
    Policy,
    find_policy_files,
    load_policy,
    policy_from_sources,
)
from subguard.engine.recorder import CheckContext, Preflight, Recorder
from subguard.engine.types import (
    BatchItem,
    CommandRequest,
    Decision,
    Effect,
    EvalError,
    FieldError,
    HttpRequest,
    Reason,
    Request,
    Resource,
    SqlRequest,
    Subject,
    ToolRequest,
)

__all__ = [
    "DECISION_RULES",
    "INPUT_SCHEMA",
    "SESSION_FIELDS",
    "BatchItem",
    "CheckBatch",
    "CheckContext",
    "Combined",
    "CommandRequest",
    "Decision",
    "Effect",
    "Engine",
    "EvalError",
    "FieldError",
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
    "ToolRequest",
    "build_input",
    "combine",
    "find_policy_files",
    "load_policy",
    "policy_from_sources",
    "request_of",
    "resource_of",
    "session_document",
    "subject_of",
]
