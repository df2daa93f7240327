"""subguard: decide, record and contain what automated agents send to production.

Load a policy once, decide many requests::

    policy = subguard.load_policy("rules/")
    engine = subguard.Engine(policy)
    decision = engine.check(subguard.SqlRequest("DELETE FROM users"), subject="ci-bot")

Fail-closed decisions (a malformed request, an engine or rule error, an unavailable
log) are logged at WARNING on the `subguard.engine` logger; the package adds only a
`NullHandler`, so nothing is printed unless the application configures logging.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

from subguard.adapters import ApprovalRequired, Denied, Refused, Terminated
from subguard.engine import (
    BatchItem,
    CommandRequest,
    Decision,
    Effect,
    Engine,
    EvalError,
    FieldError,
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

try:
    __version__ = version("subguard")  # the one source: pyproject.toml, via the metadata
except PackageNotFoundError:  # pragma: no cover - run from a source tree never installed
    __version__ = "0+unknown"

# A library logs, the application decides where: quiet unless it configures logging.
# Fail-closed decisions are logged at WARNING under `subguard.engine` (codes, never values).
logging.getLogger("subguard").addHandler(logging.NullHandler())

__all__ = [
    "AnalysisError",
    "ApprovalRequired",
    "BatchItem",
    "CommandRequest",
    "ConfigError",
    "Decision",
    "Denied",
    "Effect",
    "Engine",
    "EvalError",
    "FieldError",
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
