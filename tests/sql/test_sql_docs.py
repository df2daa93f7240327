"""The examples in docs/sql.md and the package's docstrings run as tests."""

from __future__ import annotations

import doctest
from pathlib import Path

import subguard.sql._analyze

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "sql.md"


def test_docs_examples_run() -> None:
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docstring_examples_run() -> None:
    assert doctest.testmod(subguard.sql._analyze).failed == 0
