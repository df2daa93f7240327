"""Every test runs without the `SUBGUARD_<COMMAND>_<OPTION>` variables the command line
reads, so a developer's environment cannot change what a CLI test sees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest


def _option_variables(command: Any) -> set[str]:
    names = {
        p.envvar for p in command.params if isinstance(p, click.Option) and isinstance(p.envvar, str)
    }
    for sub in getattr(command, "commands", {}).values():
        names |= _option_variables(sub)
    return names


@pytest.fixture(autouse=True)
def _no_cli_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from subguard.cli import main

    for name in _option_variables(main) - {"SUBGUARD_STORE"}:
        monkeypatch.delenv(name, raising=False)
    yield
