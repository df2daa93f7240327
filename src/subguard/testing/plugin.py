"""The pytest plugin: a `subguard_policy` fixture that loads the policy under test.

Point it at your rules with `--subguard-rules PATH` (repeatable) or the ini option
`subguard_rules`; the default is `rules/`. Test files (`*_test.guard`) are left out:
they are for `subguard test`.
"""

from __future__ import annotations

from typing import Any

import pytest

from subguard.engine import Engine, Policy, load_policy


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("subguard")
    group.addoption(
        "--subguard-rules",
        action="append",
        default=None,
        help="policy file or directory for the subguard_policy fixture (repeatable)",
    )
    parser.addini(
        "subguard_rules", "policy files or directories for subguard_policy", type="linelist"
    )


@pytest.fixture(scope="session")
def subguard_policy(request: Any) -> Policy:
    """The policy named by `--subguard-rules` / `subguard_rules`, loaded once."""
    paths = (
        request.config.getoption("--subguard-rules")
        or request.config.getini("subguard_rules")
        or ["rules"]
    )
    return load_policy(list(paths))


@pytest.fixture(scope="session")
def subguard_engine(subguard_policy: Policy) -> Engine:
    """An Engine over `subguard_policy`, without a decision log."""
    return Engine(subguard_policy)
