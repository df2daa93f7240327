"""One agent's MCP session under guard: a gate (engine, log, subject, resource, one
subguard session per MCP session), the tools the server listed and this subject may
see, and the decision for each call.

Synchronous by design: the gate and the log block, so the asynchronous proxy runs these
methods in worker threads.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mcp_types as types

from subguard.adapters._errors import Denied, Refused, describe
from subguard.adapters._gate import Gate
from subguard.adapters._masking import strategy, tagged_columns, tagged_in_output, unjudged_column
from subguard.adapters.mcp._calls import CallProblem, ToolSpec, Validator, tool_request
from subguard.adapters.mcp._results import Unmaskable, mask_by_name, mask_by_plan
from subguard.engine import Decision, Effect, Engine, Reason, ToolRequest
from subguard.engine.recorder import CheckContext
from subguard.engine.tools import tool_identity
from subguard.sql import output_lineage

__all__ = ["Admitted", "McpSession"]

#: The least time between two listings fetched because a call named an unknown tool.
RELIST_INTERVAL = 1.0


class Admitted:
    """A call the gate let through: the decision (with its masks) and the request."""

    __slots__ = ("decision", "request")

    def __init__(self, request: ToolRequest, decision: Decision) -> None:
        self.request = request
        self.decision = decision


def _hides(decision: Decision) -> bool:
    """Whether a `tool_list` decision hides the tool: a rule denied or terminated it (or
    a rule failed). The engine's fail-closed default alone does not hide a tool: a policy
    written only for SQL would otherwise hide every tool, and each call is decided anyway."""
    if decision.effect not in (Effect.DENY, Effect.TERMINATE):
        return False
    return not all(
        r.package == "subguard" and r.rule == "default" for r in decision.reasons
    ) or bool(decision.errors)


class McpSession:
    """What one MCP session may do, decided call by call. Thread-safe as its gate."""

    def __init__(
        self, gate: Gate, *, server: str, spec: ToolSpec, listing_engine: Engine | None = None
    ) -> None:
        self.gate = gate
        self.server = server
        self.spec = spec
        # `tools/list` filtering is a view, not an enforcement: it is decided without
        # recording (every call is still decided, and recorded, on its own)
        self._listing = listing_engine or Engine(gate.engine.policy)
        self._tools: dict[str, types.Tool] = {}
        self._validators: dict[str, Validator] = {}
        self._tagged = tagged_columns(gate.resource.schema)
        self._relisted = -RELIST_INTERVAL

    # -- listing --------------------------------------------------------------------------
    def visible(self, tools: Iterable[types.Tool]) -> list[types.Tool]:
        """The tools this subject may see (a `tool_list` request each: those a rule denies
        or terminates are hidden); they become the tools it may call."""
        self.gate.ensure_open()
        shown: list[types.Tool] = []
        for tool in tools:
            request = ToolRequest(
                self.server, tool.name, {}, dialect=self.spec.dialect, listing=True
            )
            decision = self._listing.check(
                request,
                subject=self.gate.subject,
                resource=self.gate.resource,
                session=self.gate.session,
            )
            if not _hides(decision):
                shown.append(tool)
        self._tools = {t.name: t for t in shown}
        self._validators = {}
        return shown

    def may_relist(self) -> bool:
        """Whether a call naming an unknown tool may fetch the server's list again: at
        most once every `RELIST_INTERVAL` seconds, so calls of made-up tools cannot make
        the guard hammer the server."""
        now = time.monotonic()
        if now - self._relisted < RELIST_INTERVAL:
            return False
        self._relisted = now
        return True

    def knows(self, name: str) -> bool:
        return name in self._tools

    # -- calling --------------------------------------------------------------------------
    def admit(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        waiting: Callable[[Decision, float], None] | None = None,
        approval_timeout: float | None = None,
    ) -> Admitted:
        """The decision that lets this call reach the server, or `Refused`."""
        self.gate.ensure_open()
        tool = self._tools.get(name)
        if tool is None:
            raise self._refuse(
                name,
                arguments,
                "unlisted_tool",
                f"tool `{name}` is not one the server listed for this subject",
            )
        try:
            validator = self._validators.get(name)
            if validator is None:
                validator = self._validators[name] = Validator(tool.input_schema)
            validator.check(arguments)
            request = tool_request(self.server, name, arguments, self.spec)
        except CallProblem as problem:
            raise self._refuse(name, arguments, problem.code, problem.message) from None
        decision = self.gate.decide(request, approval_timeout=approval_timeout, waiting=waiting)
        if request.sql is not None and self._tagged:
            # as the DB-API gate: a tagged column reaching the result by a path the facts
            # missed could not have been masked by any rule
            lineage = output_lineage(
                request.sql,
                self.spec.dialect or self.gate.resource.dialect,
                self.gate.resource.schema,
            )
            sql = decision.input.get("sql") or {}
            missed = unjudged_column(
                tagged_in_output(lineage, self._tagged), sql.get("columns_read") or ()
            )
            if missed is not None:
                raise Denied(
                    f"refused: tagged column `{missed}` reaches the result but not the facts the "
                    f"policy decided on: {describe(decision)}",
                    decision,
                )
        return Admitted(request, decision)

    def _refuse(self, name: str, arguments: Mapping[str, Any], code: str, message: str) -> Denied:
        """A refusal made before the policy (the call is not one it can judge): recorded
        as a `deny` like any other, so it counts towards the session's denials."""
        request = ToolRequest(self.server, name, dict(arguments), dialect=self.spec.dialect)
        decision = Decision(
            Effect.DENY,
            (Reason(Effect.DENY, "subguard.mcp", code, message, ""),),
            policy_hash=self.gate.engine.policy.hash,
        )
        log = self.gate.log
        if log is not None:
            try:
                text, fingerprint, exact = tool_identity(request, None, None)
            except RecursionError:  # arguments nested beyond reason: still recorded, by name
                text, fingerprint, exact = f"tool {self.server}/{name} args=(too deep)", None, None
            ctx = CheckContext(
                request=request,
                subject=self.gate.subject,
                resource=self.gate.resource,
                session_id=self.gate.session,
                request_kind=request.kind,
                redacted_text=text,
                fingerprint=fingerprint,
                exact_hash=exact,
                time_ns=time.time_ns(),
            )
            # refused either way; if the log cannot commit, its own checks fail the next call closed
            with contextlib.suppress(Exception):
                decision = log.record(ctx, decision)
        return Denied(f"denied: {describe(decision)}", decision)

    def masked(self, admitted: Admitted, result: types.CallToolResult) -> types.CallToolResult:
        """The result with the decision's masks applied, or `Denied` when it cannot be."""
        decision = admitted.decision
        if not decision.masks:
            return result
        request = admitted.request
        try:
            if request.sql is not None:
                lineage = functools.partial(
                    output_lineage,
                    request.sql,
                    self.spec.dialect or self.gate.resource.dialect,
                    self.gate.resource.schema,
                )
                plan = self.gate.mask_plan(decision, lineage)
                columns = [c.name for c in lineage().columns or ()]
                return mask_by_plan(result, plan, columns)
            masks = (
                decision.masks
                if isinstance(decision.masks, Mapping)
                else dict.fromkeys(decision.masks, "")
            )
            functions = {
                name: strategy(spec, self.gate.mask_key, direct=True)
                for name, spec in masks.items()
            }
            return mask_by_name(result, functions)
        except Refused:
            raise
        except Exception as exc:  # Unmaskable, Unplaceable, anything odd: never unmasked
            why = str(exc) if isinstance(exc, Unmaskable) else type(exc).__name__
            raise Denied(
                f"refused: a mask cannot be applied ({why}): {describe(decision)}", decision
            ) from None
