"""Properties of the parser and formatter over generated policies."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import modules

from subguard.errors import PolicyError
from subguard.lang import ast
from subguard.lang.fmt import format_module, format_text
from subguard.lang.parser import parse_module

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(modules())
def test_formatted_module_parses_back_to_itself(module: ast.Module) -> None:
    text = format_module(module)
    parsed = parse_module(text)
    assert parsed == module, text
    assert format_module(parsed) == text


@SETTINGS
@given(modules())
def test_formatting_is_idempotent_on_its_own_output(module: ast.Module) -> None:
    once = format_module(module)
    assert format_text(once) == once


# ── the parser fails only with PolicyError ───────────────────────────────────────────

_NOISE = st.one_of(
    st.sampled_from(
        [
            *'{}[]()|&;:=,."`#\n\\-+*/%<>! \t\r',
            *("if", "in", "some", "every", "not", "with", "as", "contains", "default", "import"),
            *("package", ":=", "set()", "\x00", "\ufeff", "\u2028", "😀", "1e999", "9" * 5000),
        ]
    ),
    st.text(min_size=1, max_size=3),
)


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = format_module(draw(modules()))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["delete", "insert", "swap", "nest"]))
        if action == "delete":
            size = draw(st.integers(min_value=1, max_value=5))
            text = text[:at] + text[at + size :]
        elif action == "insert":
            text = text[:at] + draw(_NOISE) + text[at:]
        elif action == "swap" and at + 1 < len(text):
            text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
        elif action == "nest":
            depth = draw(st.sampled_from([10, 99, 100, 101, 1000, 5000]))
            opener, closer = draw(st.sampled_from([("[", "]"), ("(", ")"), ("{", "}")]))
            text = text[:at] + opener * depth + "1" + closer * depth + text[at:]
    return text


def _parses_or_policy_error(text: str) -> None:
    try:
        parse_module(text)
    except PolicyError as err:
        assert isinstance(err.code, str) and err.line >= 0 and err.col >= 0


@SETTINGS
@given(mutated_texts())
def test_parser_raises_only_policy_errors_on_mutated_text(text: str) -> None:
    _parses_or_policy_error(text)


@SETTINGS
@given(st.text(max_size=200))
def test_parser_raises_only_policy_errors_on_random_text(text: str) -> None:
    _parses_or_policy_error("package p\n" + text)
    _parses_or_policy_error(text)


@SETTINGS
@given(st.binary(max_size=100))
def test_parser_raises_only_policy_errors_on_random_bytes(data: bytes) -> None:
    _parses_or_policy_error("package p\nallow if " + data.decode("utf-8", "replace"))
    _parses_or_policy_error(data.decode("latin-1"))


def test_deep_nesting_and_huge_numbers_are_policy_errors_or_values() -> None:
    for depth in (100, 101, 10_000):
        for opener, closer in (("[", "]"), ("(", ")"), ("{", "}")):
            _parses_or_policy_error(f"package p\nx := {opener * depth}1{closer * depth}\n")
        _parses_or_policy_error("package p\nx := " + "-" * depth + "1\n")
        _parses_or_policy_error("package p\nx := 1" + " + 1" * depth + "\n")
        _parses_or_policy_error("package p\nx := " + "a." * depth + "b\n")
    for digits in (20, 4300, 4301, 100_000):
        _parses_or_policy_error(f"package p\nx := {'9' * digits}\n")
        _parses_or_policy_error(f"package p\nx := 1e{'9' * digits}\n")
