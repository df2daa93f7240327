"""subguard: decide, record and contain what automated agents send to production.

Load a policy once, decide many requests::

    policy = subguard.load_policy("rules/")
    engine = subguard.Engine(policy)
    decision = engine.check(subguard.SqlRequest("DELETE FROM users"), subject="ci-bot")
"""

from subguard.adapters import ApprovalRequired, Denied, Refused, Terminated
from subguard.engine import (
    CommandRequest,
    Decision,
    Effect,
    Engine,
    EvalError,
    HttpRequest,
    Policy,
    Reason,
    Resource,
    SqlRequest,
    Subject,
    load_policy,
)
from subguard.errors import (
    AnalysisError,
    ConfigError,
    LogError,
    PolicyError,
    PolicyErrors,
    SubguardError,
)

__version__ = "0.1.0"

__all__ = [
    "AnalysisError",
    "ApprovalRequired",
    "CommandRequest",
    "ConfigError",
    "Decision",
    "Denied",
    "Effect",
    "Engine",
    "EvalError",
    "HttpRequest",
    "LogError",
    "Policy",
    "PolicyError",
    "PolicyErrors",
    "Reason",
    "Refused",
    "Resource",
    "SqlRequest",
    "SubguardError",
    "Subject",
    "Terminated",
    "__version__",
    "load_policy",
]
