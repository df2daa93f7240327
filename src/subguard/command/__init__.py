"""Facts about shell commands and HTTP requests: what rules see as `input.command` and `input.http`.

This package knows nothing of rules or SQL parsing: it finds the programs a command line
would run, the SQL it hands to database clients, and what an HTTP request does to the
Kubernetes API. The engine joins these facts with the SQL analysis and the policy.
"""

from __future__ import annotations

from subguard.command._facts import CommandFacts, Invocation, parse_command
from subguard.command._http import http_facts, kubernetes_facts
from subguard.command._redact import DEFAULT_SECRET_PATTERNS, redact_command

__all__ = [
    "DEFAULT_SECRET_PATTERNS",
    "CommandFacts",
    "Invocation",
    "http_facts",
    "kubernetes_facts",
    "parse_command",
    "redact_command",
]
