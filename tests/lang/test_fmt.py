"""`subguard fmt`: canonical text for hand-written policies covering every construct."""

from __future__ import annotations

import pytest

from subguard.errors import PolicyError
from subguard.lang import ast
from subguard.lang.fmt import format_module, format_text
from subguard.lang.parser import parse_module

MESSY = (
    "# leading comment\n"
    "package   guard.sql.destructive\n"
    "import input.sql.statements\n"
    "import data.config as cfg   # trailing on import\n"
    "# Destructive DDL never runs.\n"
    'deny contains msg if { some s in statements; s.kind in {"drop","truncate"}\n'
    '  msg := sprintf("%s is never allowed", [upper(s.kind)]) }\n'
    "default allow = false\n"
    'allow if "agents" in input.subject.groups\n'
    "allow if {\n"
    "  every k, v in cfg.envs { v == true   # trailing in every\n"
    '  k != "" }\n'
    "}\n"
    "total := x if { x = (1 + 2) * 3 - -input.session.requests % 2 }\n"
    'masks[col] := "hash" if { some i, col in input.sql.columns_read ; not i > 3 }\n'
    'f(x, "lit") := y if y := lower(x)\n'
    "g(x) if x == `raw\\string`\n"
    "both := {1, 2} | ({3} & {4})\n"
    "arr := [[a, b] | some a in [1]; b := a]\n"
    "sets := [x | x := ({1} | {2})]\n"
    'objs := {k: v | some k, v in {"a": 1, "b": [1, {}, set()]}}\n'
    'w if { input.x with input.a.b as {"k": null} with data.y as 1 }\n'
    "neg := -(1 + 2)\n"
    "chain := (1 == 2) == false\n"
    "mem := (1 in [1]) in [true]\n"
    'idx := input["a b"][0].c\n'
    'calls := regex.match(`^a$`, "a")\n'
)

CANONICAL = (
    "# leading comment\n"
    "package guard.sql.destructive\n"
    "\n"
    "import input.sql.statements\n"
    "# trailing on import\n"
    "import data.config as cfg\n"
    "\n"
    "# Destructive DDL never runs.\n"
    "deny contains msg if {\n"
    "    some s in statements\n"
    '    s.kind in {"drop", "truncate"}\n'
    '    msg := sprintf("%s is never allowed", [upper(s.kind)])\n'
    "}\n"
    "\n"
    "default allow := false\n"
    'allow if "agents" in input.subject.groups\n'
    "\n"
    "allow if {\n"
    "    # trailing in every\n"
    "    every k, v in cfg.envs {\n"
    "        v == true\n"
    '        k != ""\n'
    "    }\n"
    "}\n"
    "\n"
    "total := x if {\n"
    "    x = (1 + 2) * 3 - -input.session.requests % 2\n"
    "}\n"
    "\n"
    'masks[col] := "hash" if {\n'
    "    some i, col in input.sql.columns_read\n"
    "    not i > 3\n"
    "}\n"
    "\n"
    'f(x, "lit") := y if y := lower(x)\n'
    "\n"
    'g(x) if x == "raw\\\\string"\n'
    "\n"
    "both := {1, 2} | {3} & {4}\n"
    "\n"
    "arr := [[a, b] | some a in [1]; b := a]\n"
    "\n"
    "sets := [x | x := {1} | {2}]\n"
    "\n"
    'objs := {k: v | some k, v in {"a": 1, "b": [1, {}, set()]}}\n'
    "\n"
    "w if {\n"
    '    input.x with input.a.b as {"k": null} with data.y as 1\n'
    "}\n"
    "\n"
    "neg := -(1 + 2)\n"
    "\n"
    "chain := 1 == 2 == false\n"
    "\n"
    "mem := (1 in [1]) in [true]\n"
    "\n"
    'idx := input["a b"][0].c\n'
    "\n"
    'calls := regex.match("^a$", "a")\n'
)


def _check(source: str) -> str:
    """Format `source` and check the formatter's two promises on it."""
    text = format_text(source)
    assert parse_module(text) == parse_module(source)
    assert format_text(text) == text
    return text


def test_every_construct_is_printed_canonically() -> None:
    assert _check(MESSY) == CANONICAL


def test_canonical_text_is_a_fixed_point() -> None:
    assert format_text(CANONICAL) == CANONICAL


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # precedence: parentheses only where the tree needs them
        ("x := 1 + 2 * 3", "x := 1 + 2 * 3"),
        ("x := (1 + 2) * 3", "x := (1 + 2) * 3"),
        ("x := 1 - (2 - 3)", "x := 1 - (2 - 3)"),
        ("x := (1 - 2) - 3", "x := 1 - 2 - 3"),
        ("x := -(-y)", "x := --y"),
        ("x := - 1", "x := -1"),
        ("x := a | b & c", "x := a | b & c"),
        ("x := (a | b) & c", "x := (a | b) & c"),
        ("x := a == (b == c)", "x := a == (b == c)"),
        ("x := 1 < 2 in s", "x := 1 < 2 in s"),
        ("x := 1 < (2 in s)", "x := 1 < (2 in s)"),
        ("x := a in (b in c)", "x := a in (b in c)"),
        ("x := {(a in b): 1}", "x := {(a in b): 1}"),
        # a bare `|` inside brackets would be a comprehension bar
        ("x := [(a | b)]", "x := [(a | b)]"),
        ("x := {(a | b), c}", "x := {(a | b), c}"),
        ('x := {"k": (a | b)}', 'x := {"k": (a | b)}'),
        ("x := y[(a | b)]", "x := y[(a | b)]"),
        ("x := [(a | b) == c]", "x := [(a | b) == c]"),
        ("x := [f(a | b)]", "x := [f(a | b)]"),
        ("x := [y | y := a | b]", "x := [y | y := a | b]"),
        ("x := {k: v | some k, v in o}", "x := {k: v | some k, v in o}"),
        # literals
        ("x := set()", "x := set()"),
        ("x := {}", "x := {}"),
        ("x := [1, 2,]", "x := [1, 2]"),
        ('x := `a\\b"c`', 'x := "a\\\\b\\"c"'),
        ('x := "\\u00e9\\n\\t"', 'x := "é\\n\\t"'),
        ("x := 1.5e10", "x := 15000000000.0"),
        ("x := 1e999", "x := 1e999"),
        ("x := [true, false, null]", "x := [true, false, null]"),
        ('x := input["not a name"][0]', 'x := input["not a name"][0]'),
        ("x := input.default.if", "x := input.default.if"),
        ('x := contains("ab", "a")', 'x := contains("ab", "a")'),
        # rule heads
        ("default x = 1", "default x := 1"),
        ("x = 1", "x := 1"),
        ("x", "x"),
        ("f(a)", "f(a)"),
        ("f() := 1", "f() := 1"),
        ("f(a, 1) = a", "f(a, 1) := a"),
        ('m[k] := 1 if k := "a"', 'm[k] := 1 if k := "a"'),
        ("m[(a | b)] := 1", "m[(a | b)] := 1"),
        ("s contains 1", "s contains 1"),
        # literals in bodies
        ("x if { some a, b; a = 1; b = a }", "x if {\n    some a, b\n    a = 1\n    b = a\n}"),
        ("x if not y", "x if not y"),
        (
            "x if { y with input.a as 1 with data.b as (1 in c) }",
            "x if {\n    y with input.a as 1 with data.b as (1 in c)\n}",
        ),
        ("x if some a in (b in c)", "x if some a in (b in c)"),
        # a one-line body that starts with a brace becomes a block
        ("x if ({1})", "x if {\n    {1}\n}"),
        ('x if ({"a": y} == z)', 'x if {\n    {"a": y} == z\n}'),
        ("x if every a in b { a }", "x if every a in b {\n    a\n}"),
        ("x := [y | every a in b { a; c }; y := 1]", "x := [y | every a in b { a; c }; y := 1]"),
        ("x := [y | every a in {1} { a }; y := 1]", "x := [y | every a in {1} { a }; y := 1]"),
    ],
)
def test_expressions_and_rules(source: str, expected: str) -> None:
    assert _check("package p\n" + source) == "package p\n\n" + expected + "\n"


def test_comments_move_to_the_item_they_stand_before_or_beside() -> None:
    source = """# file
package p  # on the package line
import input.a # on an import

# above x
x := 1 # beside x
y if {
    # above a literal
    a  # beside a literal
    every z in b {
        # inside every
        z
        # end of every body
    }
    # end of body
}
# end of file
"""
    expected = """# file
# on the package line
package p

# on an import
import input.a

# above x
# beside x
x := 1

y if {
    # above a literal
    # beside a literal
    a
    every z in b {
        # inside every
        z
        # end of every body
    }
    # end of body
}

# end of file
"""
    assert _check(source) == expected


def test_rules_are_separated_by_one_blank_line_but_a_default_keeps_its_rule() -> None:
    source = "package p\n\n\n\ndefault allow := false\n\nallow if x\nallow if y\ndeny contains 1"
    expected = "package p\n\ndefault allow := false\nallow if x\n\nallow if y\n\ndeny contains 1\n"
    assert _check(source) == expected


def test_format_module_needs_no_locations() -> None:
    module = ast.Module(
        ("p",),
        (),
        (
            ast.Rule(
                ast.SET,
                "deny",
                ast.Var("m"),
                (ast.Assign(":=", ast.Var("m"), ast.Scalar("no")),),
            ),
        ),
    )
    assert format_module(module) == 'package p\n\ndeny contains m if {\n    m := "no"\n}\n'


def test_format_text_reports_parse_errors() -> None:
    with pytest.raises(PolicyError) as err:
        format_text("package p\nx :=", "bad.guard")
    assert err.value.code == "parse_error"
    assert err.value.path == "bad.guard"
