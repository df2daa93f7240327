"""`count(x)` compiles to `len(x)` when `x` is a small array, set, object or string (what
the builtin returns for it, charging the budget nothing); anything else goes through the
builtin. Both give the same value, or the same error, on any input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.lang import budget, compile_policy, parse_module, runtime
from subguard.lang.builtins import BUILTINS

_POLICY = compile_policy([parse_module("package p\n\nn := count(input.x)\n")])

_SIZES = st.integers(0, budget.FREE_SIZE + 3)
_VALUES = st.one_of(
    _SIZES.map(lambda n: tuple(range(n))),
    _SIZES.map(lambda n: frozenset(range(n))),
    _SIZES.map(lambda n: {str(i): i for i in range(n)}),
    st.text(max_size=budget.FREE_SIZE + 3),
    st.integers(),
    st.booleans(),
    st.none(),
)


def _outcome(fn: Any) -> Any:
    try:
        return ("value", fn())
    except Exception as exc:  # the error a rule would report
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=300, deadline=None)
@given(value=_VALUES)
def test_count_compiled_inline_equals_the_builtin(value: Any) -> None:
    source = _POLICY.source
    assert "len(" in source and "_b_count(" in source  # the inline form, with its fallback
    meter = budget.start()
    want = _outcome(lambda: BUILTINS["count"].fn(value))
    spent_by_builtin = meter[1] - meter[0]
    ctx = runtime.Ctx({"x": value}, {}, None, budget.start())
    got = _outcome(lambda: _POLICY._rule_fns["p.n"](ctx))
    assert got == want
    assert ctx.meter[1] - ctx.meter[0] == spent_by_builtin  # charged alike
