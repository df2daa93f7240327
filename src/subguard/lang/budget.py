"""The evaluation budget: what one evaluation of a policy may spend, in units of one loop
iteration or one element (or 512 characters) a builtin allocates. Generated loops charge
their collection's size when they start; builtins that build large values from small
ones (`numbers.range`, `sprintf` widths, `replace`, `concat`, `array.concat`) charge
what they would allocate before allocating it; every builtin call and membership test
charges the size of its large arguments (a text of 1,024 characters or more, a collection
of more than 256 elements), which it reads. Exceeding the budget raises
`BudgetExceeded`, a rule error: the decision fails closed (`deny`, `budget_exceeded`).

Each evaluation gets a fresh meter, kept on its context (and shared by every `with`
context and function call inside it, so a rule cannot escape it) and made the thread's
current one for builtins: evaluation runs synchronously on the caller's thread.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from subguard.lang.values import FrozenDict

__all__ = [
    "DEFAULT_BUDGET",
    "BudgetExceeded",
    "charge_arguments",
    "charge_text",
    "exceeded",
    "spend",
    "start",
]

#: Units one evaluation may spend by default: well under a second of generated loops.
DEFAULT_BUDGET: Final = 1_000_000

#: Characters of text that cost one unit.
TEXT_UNIT: Final = 512

#: Texts up to this many characters and collections up to this many elements are free
#: to read: larger arguments cost their size whenever a builtin or a membership test reads
#: them, since a rule may read one input text once per iteration over another input list.
FREE_TEXT: Final = 1024
FREE_SIZE: Final = 256

_COLLECTIONS: Final = frozenset({tuple, frozenset, dict, FrozenDict})


class BudgetExceeded(Exception):
    """An evaluation spent more than its budget; the rule fails, the decision denies."""

    code = "budget_exceeded"


#: The meter of the evaluation running on this thread, for builtins (which get no context).
_LOCAL: Final = threading.local()


def start(budget: int = DEFAULT_BUDGET) -> list[int]:
    """A new meter of `budget` units for one evaluation, made this thread's current one.
    Generated code keeps it on the evaluation context (`Ctx.meter`) and charges it inline;
    `with` contexts share it."""
    meter = [budget, budget]
    _LOCAL.meter = meter
    return meter


def exceeded(meter: list[int]) -> BudgetExceeded:
    return BudgetExceeded(
        f"evaluation budget exceeded (more than {meter[1]} iterations and allocated elements)"
    )


def spend(units: int) -> None:
    """Charge `units` to this thread's evaluation; `BudgetExceeded` when it has spent its
    budget. Outside an evaluation (a builtin called directly) one call may spend a budget."""
    meter = getattr(_LOCAL, "meter", None)
    if meter is None:
        if units > DEFAULT_BUDGET:
            raise exceeded([0, DEFAULT_BUDGET])
        return
    meter[0] -= units
    if meter[0] < 0:
        raise exceeded(meter)


def charge_arguments(args: tuple[Any, ...]) -> None:
    """What a builtin call costs beyond one unit: the size of its large arguments."""
    for arg in args:
        kind = type(arg)
        if kind is str:
            if len(arg) > FREE_TEXT:
                spend(len(arg) // TEXT_UNIT)
        elif kind in _COLLECTIONS and len(arg) > FREE_SIZE:
            spend(len(arg))


def charge_text(length: int) -> None:
    """Charge building a text of `length` characters."""
    spend(length // TEXT_UNIT + 1)
