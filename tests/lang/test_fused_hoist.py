"""The fused function reads `ctx.input` and `ctx.meter` once (`policy.hoist_context`):
only in code of the recognised shape, never inside string literals, and the rewritten
function decides as the definitions' own functions do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.lang.policy import hoist_context

_FUNCTION = """def _decide_always(ctx, hits, raised):
    out = []
    try:
        for _once in _ONCE:
            _c1 = ctx.input['sql']['statements']
            ctx.meter[0] -= len(_c1)
            if ctx.meter[0] < 0: raise _over(ctx.meter)
            out.append('ctx.input[' + "ctx.meter" + {message!r})
    except Exception as exc:
        raised.append((0, exc))"""


def _run(source: str, input: object, meter: list[int]) -> tuple[list[object], list[object]]:
    class Ctx:
        def __init__(self) -> None:
            self.input = input
            self.meter = meter

    def over(m: list[int]) -> Exception:
        return RuntimeError(f"over {m[1]}")

    namespace: dict[str, object] = {"_ONCE": (None,), "_over": over, "_U": (KeyError, TypeError)}
    exec(compile(source, "<test>", "exec"), namespace)
    hits: list[object] = []
    raised: list[object] = []
    namespace["_decide_always"](Ctx(), hits, raised)  # type: ignore[operator]
    return [*hits, *namespace.get("out", [])], [type(e).__name__ for _i, e in raised]


def test_reads_are_hoisted_and_string_literals_are_left_alone() -> None:
    source = _FUNCTION.format(message="ctx.input")
    hoisted = hoist_context(source)
    lines = hoisted.split("\n")
    assert lines[1:3] == ["    _fused_input = ctx.input", "    _fused_meter = ctx.meter"]
    assert "_c1 = _fused_input['sql']['statements']" in hoisted
    assert "_fused_meter[0] -= len(_c1)" in hoisted
    assert "out.append('ctx.input[' + \"ctx.meter\" + 'ctx.input')" in hoisted
    assert "ctx.input[" not in hoisted.replace("'ctx.input['", "")


def test_an_unrecognised_shape_is_left_unchanged() -> None:
    source = _FUNCTION.format(message="m")
    for changed in (
        source.replace("_c1 = ctx.input", "ctx = ctx.input"),  # ctx rebound
        source.replace("out = []", "ctx.input = {}"),  # a field assigned
        source.replace("out = []", "_fused_input = 1"),  # the local's name in use
        source.replace("out = []", "f = lambda ctx: ctx.input"),  # an inner ctx
        source.replace("out = []", "def g(ctx):\n        return ctx.input"),
        source.replace("def _decide_always(ctx,", "def _decide_always(c,"),
    ):
        assert hoist_context(changed) == changed


@settings(max_examples=100, deadline=None)
@given(
    statements=st.none() | st.lists(st.integers(), max_size=4).map(tuple),
    budget=st.integers(0, 6),
    message=st.text(max_size=12),
)
def test_the_hoisted_function_does_what_the_original_does(statements: object, budget: int, message: str) -> None:
    source = _FUNCTION.format(message=message)
    input = {"sql": {"statements": statements}} if statements is not None else {}
    assert _run(hoist_context(source), input, [budget, budget]) == _run(source, input, [budget, budget])
