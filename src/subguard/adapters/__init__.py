"""Adapters put subguard in the data path: the gate (the enforcement core every adapter
shares), row masking, the DB-API 2.0 wrapper (`subguard.adapters.dbapi`) and the MCP
guard (`subguard.adapters.mcp`, with the `mcp` extra).

The exceptions are light to import; the gate, which brings the decision log, loads on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from subguard.adapters._errors import ApprovalRequired, Denied, Refused, Terminated

if TYPE_CHECKING:
    from subguard.adapters._gate import Gate
    from subguard.adapters._masking import MaskPlan

__all__ = ["ApprovalRequired", "Denied", "Gate", "MaskPlan", "Refused", "Terminated"]


def __getattr__(name: str) -> Any:
    if name == "Gate":
        from subguard.adapters._gate import Gate

        return Gate
    if name == "MaskPlan":
        from subguard.adapters._masking import MaskPlan

        return MaskPlan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
