"""Cross-check of the parser against a second one: Debian's `shfmt --to-json` (mvdan/sh).

For texts without wrappers or nested scripts, both must find the same simple commands
(the literal program names, in source order, substitutions included) and agree on
whether the text parses. With SUBGUARD_REQUIRE_SHFMT=1 (CI) a missing shfmt fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.command import parse_command

SHFMT = shutil.which("shfmt")
if SHFMT is None:
    if os.environ.get("SUBGUARD_REQUIRE_SHFMT") == "1":
        pytest.fail("shfmt is required (SUBGUARD_REQUIRE_SHFMT=1): apt-get install shfmt", pytrace=False)
    pytest.skip("shfmt is not installed", allow_module_level=True)


def _shfmt(text: str) -> list[str] | None:
    """Program names of every simple command shfmt finds, or None when it does not parse."""
    assert SHFMT is not None
    done = subprocess.run([SHFMT, "--to-json"], input=text, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Type") == "CallExpr" and node.get("Args"):
                found.append("".join(p.get("Value", "?") for p in node["Args"][0].get("Parts", [])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(done.stdout))
    return found


CASES = [
    "ls -la",
    "a | b && c; d || e &",
    "echo $(d x) `e` \"$(f)\"",
    "f <(g) >out 2>&1",
    "(a; b) | { c; d; }",
    "if a; then b; elif c; then d; else e; fi",
    "while read l; do f \"$l\"; done < file",
    "for i in 1 2; do g $i; done",
    "case $x in a) h;; b) i;; esac",
    "x=1 y=2 j arg",
    "k 'quoted | not a pipe' \"and ; this\"",
    "l \\; m",
    "n # comment ; o",
    "p\nq\n\nr",
    "s && \\\n  t",
    "f() { u; }; f",
    "echo 'unclosed",
    "a && ",
    "if true; then ls",
    "echo $((1 + 2))",
    "v <<< word",
]


@pytest.mark.parametrize("text", CASES)
def test_the_same_commands_as_shfmt(text: str) -> None:
    theirs = _shfmt(text)
    ours = parse_command(text)
    if theirs is None:
        assert ours.parse_error is not None
        return
    assert ours.parse_error is None
    programs = [inv.program for inv in ours.pipeline]
    # shfmt keeps `f` (a function call) and assignments-only commands as calls too
    assert sorted(p for p in programs) == sorted(p for p in theirs if p), (programs, theirs)


words = st.sampled_from(["ls", "cat", "grep", "x", "-l", "'a b'", '"c"', "$(id)", "`id`", "|", "&&", ";", "||", "\n", ">", "f"])


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=1, max_size=8).map(" ".join))
def test_parse_errors_agree_with_shfmt(text: str) -> None:
    theirs = _shfmt(text)
    ours = parse_command(text)
    if theirs is None:
        assert ours.parse_error is not None, text
