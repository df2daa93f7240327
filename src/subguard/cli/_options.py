"""Options several commands share, declared once (the same name, type and help)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["data_option", "rules_option"]

F = TypeVar("F", bound=Callable[..., Any])


def rules_option(*, required: bool = True) -> Callable[[F], F]:
    """`--rules PATH` (repeatable): the policy's files or directories."""
    return click.option(
        "--rules",
        "rules",
        multiple=True,
        required=required,
        type=click.Path(),
        help="Policy file or directory (repeatable).",
    )


def data_option(dest: str = "data_files", *, path: click.Path | None = None) -> Callable[[F], F]:
    """`--data FILE` (repeatable): JSON merged at the root of `data`."""
    return click.option(
        "--data",
        dest,
        multiple=True,
        type=path or click.Path(),
        help="JSON merged at the root of `data` (repeatable).",
    )
