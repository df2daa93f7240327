"""What the body compiler writes code into: a function being generated (`Fn`), the
variables in scope (`Var`), and how generated lines become source text (`render`)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from subguard.lang import ast
from subguard.lang.program import Line
from subguard.lang.types import Type

# What a loop charges the evaluation's budget as it starts (see `budget`): the size of
# what it iterates, inline (a call per loop would cost more than the check).
CHARGE = "ctx.meter[0] -= len({0}) if type({0}) in _SIZED else 1"
CHECK = "if ctx.meter[0] < 0: raise _over(ctx.meter)"

__all__ = ["Fn", "Var", "render"]


@attrs.define
class Var:
    py: str
    type: Type
    loc: ast.Location
    used: bool = False
    declared_only: bool = False  # `some x` without a binding yet


class Fn:
    """Code being generated for one Python function: lines, indentation, loop depth."""

    def __init__(self, indent: int, leaves: bool = False) -> None:
        self.lines: list[Line] = []
        self.indent = indent
        self.loops = 0
        #: What a function returns when its body fails outside any loop (a
        #: comprehension returns what it collected: an empty collection, not undefined).
        self.result = ""
        #: A failure outside any loop ends the line with the statement `render` is
        #: given (an entrypoint body: `return` in its own function, `break` inlined).
        self.leaves = leaves

    def emit(self, line: str) -> None:
        self.lines.append((self.indent, line, False))

    def emit_failing(self, prefix: str) -> None:
        """`prefix` followed by what a failing literal does here: move on to the next
        binding, or leave."""
        if self.loops:
            self.lines.append((self.indent, prefix + "continue", False))
        elif self.leaves:
            self.lines.append((self.indent, prefix, True))
        else:
            self.lines.append(
                (
                    self.indent,
                    prefix + (f"return {self.result}" if self.result else "return"),
                    False,
                )
            )


def render(lines: Sequence[Line], base: int, leave: str = "") -> list[str]:
    """Generated lines as source text, the function holding them placed at `base`;
    `leave` ends the lines that leave the body."""
    rendered = []
    for indent, text, leaves in lines:
        if leaves:
            assert leave, "an entrypoint body is rendered with its leave statement"
            text += leave
        rendered.append("    " * (base + indent) + text)
    return rendered
