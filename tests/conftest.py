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

    main.list_commands(click.Context(main))  # registers the commands loaded on first use
    for name in _option_variables(main) - {"SUBGUARD_STORE"}:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_policy_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The CLI's cache of parsed policies lives in a directory of the test run, not the
    user's cache directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUBGUARD_CACHE_DIR", str(tmp_path_factory.mktemp("policy-cache")))
        yield
