"""The compiled evaluator agrees exactly with the reference evaluator on generated safe
policies and generated inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from policy_strategies import DATA, inputs, safe_policies
from reference import ERROR, evaluate_all

from subguard.lang import ast
from subguard.lang.compiler import compile_policy
from subguard.lang.fmt import format_module
from subguard.lang.parser import parse_module
from subguard.lang.values import equal


def _same(a: Any, b: Any) -> bool:
    if (isinstance(a, str) and a == ERROR) or (isinstance(b, str) and b == ERROR):
        return a == b
    return equal(a, b)


def _texts(modules: list[ast.Module]) -> list[str]:
    # shown as policy text when Hypothesis reports a failing example
    return [format_module(m) for m in modules]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(safe_policies().map(_texts), inputs())
def test_compiled_policy_agrees_with_the_reference(texts: list[str], input: dict[str, Any]) -> None:
    modules = [parse_module(text, f"p{i}.guard") for i, text in enumerate(texts)]
    policy = compile_policy(modules)
    expected = evaluate_all(modules, input, DATA)
    actual = policy.evaluate_all(input, DATA)
    for name in sorted(expected.keys() | actual.keys()):
        compiled, reference = actual.get(name, "<undefined>"), expected.get(name, "<undefined>")
        assert _same(compiled, reference), f"{name}: compiled {compiled!r}, reference {reference!r}"
