"""The compiler's shape: named stages, builtins' declared types, errors located by a
`Location`."""

from __future__ import annotations

import pytest

import subguard
from subguard.engine import policy_from_sources
from subguard.errors import Location, PolicyError
from subguard.lang import BUILTINS, STAGES, Builtin


def _errors(text: str) -> set[tuple[str, int, int]]:
    with pytest.raises(subguard.PolicyErrors) as info:
        policy_from_sources([("p.guard", "package p\n\n" + text + "\n")])
    return {(e.code, e.line, e.col) for e in info.value.errors}


def test_stages_are_named_and_in_order() -> None:
    assert [s.name for s in STAGES] == [
        "collect rules",
        "resolve imports",
        "check defaults",
        "compile bodies",
        "compile defaults",
        "check recursion",
        "assemble",
    ]


def test_every_builtin_declares_as_many_argument_types_as_it_takes() -> None:
    for builtin in BUILTINS.values():
        assert builtin.args is not None and len(builtin.args) == builtin.arity, builtin.name


def test_a_builtin_declaring_the_wrong_number_of_argument_types_is_refused() -> None:
    with pytest.raises(ValueError):
        Builtin("f", 2, lambda a, b: a, "any", ("string",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x := lower(input.request.time_ns)", {("type_error", 3, 12)}),
        ('x := substring(input.request.text, "1", 2)', {("type_error", 3, 36)}),
        ("x := startswith(input.subject.groups, input.request.text)", {("type_error", 3, 17)}),
    ],
)
def test_a_builtin_given_an_argument_of_another_known_type_is_a_type_error(text: str, expected: set[tuple[str, int, int]]) -> None:
    assert _errors(text) == expected


def test_arguments_of_unknown_or_declared_type_pass() -> None:
    policy_from_sources([("p.guard", 'package p\n\nx := lower(input.subject.claims.team)\ny := concat(",", input.subject.groups)\n')])


def test_policy_error_text_is_path_line_col_code_message() -> None:
    error = PolicyError("type_error", "bad", Location("p.guard", 3, 7, 3, 12), hint="did you mean `x`?")
    assert str(error) == "p.guard:3:7: type_error: bad (did you mean `x`?)"
    assert (error.path, error.line, error.col, error.location.end_col) == ("p.guard", 3, 7, 12)


def test_compile_errors_carry_the_end_of_their_span() -> None:
    with pytest.raises(subguard.PolicyErrors) as info:
        policy_from_sources([("p.guard", "package p\n\nx := input.sql.statementz\n")])
    (error,) = info.value.errors
    assert error.code == "unknown_field"
    assert (error.location.line, error.location.end_line) == (3, 3)
    assert error.location.end_col > error.location.col
