"""`subguard eval --query` and `--explain`: tools for policy authors.

`--query data.pkg.rule` prints the value of any rule or document (like `opa eval`);
`--explain` prints, after a decision, each decision rule's definitions that fired and,
for those that did not, the first literal that failed, with its location.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from subguard.engine import DECISION_RULES, Decision, Policy, find_policy_files
from subguard.engine.policy import INPUT_SCHEMA
from subguard.engine.sources import read_policy_source
from subguard.errors import PolicyError, PolicyErrors
from subguard.lang import (
    CompiledPolicy,
    Explanation,
    compile_policy,
    explain,
    parse_module,
    to_json,
)

__all__ = ["print_explanations", "run_query"]

_QUERY = re.compile(r"data(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _print_errors(exc: PolicyError) -> None:
    for error in exc.errors if isinstance(exc, PolicyErrors) else [exc]:
        hint = f" ({error.hint})" if error.hint else ""
        click.echo(
            f"{error.path}:{error.line}:{error.col}: {error.code}: {error.message}{hint}", err=True
        )


def _untyped(rules: Sequence[str]) -> CompiledPolicy:
    """The rules compiled without the input schema (for inputs outside it)."""
    modules = [
        parse_module(read_policy_source(f).removeprefix("\ufeff"), str(f))
        for f in find_policy_files(list(rules))
    ]
    return compile_policy(modules)


def run_query(
    query: str,
    rules: Sequence[str],
    policy: Policy | None,
    input_document: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    *,
    untyped: bool,
) -> int:
    """Print the value at `query` as JSON; the exit status: 0 defined, 1 undefined, 2 an
    error (a bad query, a policy that does not load, a rule that fails)."""
    if not _QUERY.fullmatch(query):
        click.echo(
            f"query: `{query}` is not a path under `data` (write `data.<package>.<rule>`)", err=True
        )
        return 2
    try:
        compiled = _untyped(rules) if untyped or policy is None else policy.compiled
    except PolicyError as exc:
        _print_errors(exc)
        return 2
    path = query.split(".")[1:]
    try:
        value = compiled.document(
            path, dict(input_document or {}), data if policy is None else policy.data
        )
    except Exception as exc:  # undefined, or a rule that failed: never a traceback
        from subguard.lang import UNDEFINED_ERRORS

        if isinstance(exc, UNDEFINED_ERRORS):
            click.echo(f"{query}: undefined", err=True)
            return 1
        click.echo(f"{query}: error: {exc}", err=True)
        return 2
    click.echo(json.dumps(to_json(value), indent=2, sort_keys=True))
    return 0


def print_explanations(policy: Policy, decision: Decision, fmt: str) -> None:
    """Each decision rule's definitions for the input the decision saw: fired, or the
    first literal that failed."""
    try:
        found = explain(
            policy.modules,
            set(DECISION_RULES),
            dict(decision.input),
            policy.data,
            schema=INPUT_SCHEMA,
        )
    except PolicyError as exc:
        _print_errors(exc)
        sys.exit(2)
    if fmt in ("json", "jsonl"):
        click.echo(
            json.dumps(
                {"explain": [_as_dict(e) for e in found]},
                separators=(",", ":") if fmt == "jsonl" else None,
                indent=None if fmt == "jsonl" else 2,
            )
        )
        return
    click.echo("explain:")
    for e in found:
        where = e.location.short
        if e.fired:
            click.echo(f"  {click.style('fired', fg='green')}      {e.package}.{e.rule}  ({where})")
        elif e.failed_at is not None:
            reason = f"`{e.failed_literal}` failed at {e.failed_at.short}:{e.failed_at.col}"
            if e.error:
                reason += f" ({e.error})"
            click.echo(
                f"  {click.style('not fired', fg='yellow')}  {e.package}.{e.rule}  ({where}): {reason}"
            )
        else:
            click.echo(
                f"  {click.style('not fired', fg='yellow')}  {e.package}.{e.rule}  ({where}): its value is undefined"
            )


def _as_dict(e: Explanation) -> dict[str, Any]:
    return {
        "package": e.package,
        "rule": e.rule,
        "location": e.location.short,
        "fired": e.fired,
        "failed_at": f"{e.failed_at.short}:{e.failed_at.col}" if e.failed_at else None,
        "failed_literal": e.failed_literal,
        "error": e.error,
    }
