"""The evaluation budget: what one evaluation of a policy may spend, in units of one loop
iteration or one element (or 64 characters) a builtin allocates. Generated loops charge
their collection's size when they start; builtins that build large values from small
ones (`numbers.range`, `sprintf` widths, `replace`, `concat`, `array.concat`) charge
what they would allocate before allocating it. Exceeding the budget raises
`BudgetExceeded`, a rule error: the decision fails closed (`deny`, `budget_exceeded`).

The meter is per thread (evaluation runs synchronously on the caller's thread) and is
reset when an evaluation starts, so a rule cannot escape it through `with` or a function.
"""

from __future__ import annotations

import threading
from typing import Any, Final

__all__ = ["DEFAULT_BUDGET", "BudgetExceeded", "charge_text", "reset", "spend", "spend_on"]

#: Units one evaluation may spend by default: well under a second of generated loops.
DEFAULT_BUDGET: Final = 1_000_000

#: Characters of text that cost one unit.
TEXT_UNIT: Final = 64


class BudgetExceeded(Exception):
    """An evaluation spent more than its budget; the rule fails, the decision denies."""

    code = "budget_exceeded"


class _Meter(threading.local):
    left: int = DEFAULT_BUDGET
    budget: int = DEFAULT_BUDGET


_METER: Final = _Meter()


def reset(budget: int = DEFAULT_BUDGET) -> None:
    """Start an evaluation with `budget` units."""
    _METER.left = budget
    _METER.budget = budget


def spend(units: int) -> None:
    """Charge `units`; `BudgetExceeded` when the evaluation has spent its budget."""
    left = _METER.left - units
    _METER.left = left
    if left < 0:
        raise BudgetExceeded(f"evaluation budget exceeded (more than {_METER.budget} iterations and allocated elements)")


def spend_on(collection: Any) -> None:
    """What a generated loop charges as it starts: one unit per element (at least one)."""
    try:
        size = len(collection)
    except TypeError:
        size = 1
    spend(size if size > 0 else 1)


def charge_text(length: int) -> None:
    """Charge building a text of `length` characters."""
    spend(length // TEXT_UNIT + 1)
