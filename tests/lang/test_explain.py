"""`explain`: for each definition of the rules asked about, whether it fired and, when
not, the first literal that failed, with its location."""

from __future__ import annotations

from typing import Any

from subguard.lang import explain, parse_module

POLICY = """package p

deny contains "a" if {
    some x in input.xs
    x > 10
    not input.ok
}

deny contains "b" if {
    count(input.xs) > 0
    every x in input.xs {
        x > 0
    }
}

deny contains "c" if {
    to_number(input.text) > 1
}

allow if { input.ok } else := false

other := 1
"""


def _why(input: dict[str, Any]) -> list[tuple[int, bool, tuple[int, int] | None, str | None]]:
    found = explain([parse_module(POLICY, "p.guard")], {"deny", "allow"}, input, {})
    return [
        (e.location.line, e.fired, (e.failed_at.line, e.failed_at.col) if e.failed_at else None, e.failed_literal)
        for e in found
    ]


def test_first_failing_literal_of_each_definition() -> None:
    assert _why({"xs": [1, 2], "ok": False, "text": "0"}) == [
        (3, False, (5, 5), "x > 10"),
        (9, True, None, None),
        (16, False, (17, 5), "to_number(input.text) > 1"),
        (20, False, (20, 12), "input.ok"),
    ]


def test_fired_definitions_and_a_negation_that_failed() -> None:
    assert _why({"xs": [11], "ok": True, "text": "2"}) == [
        (3, False, (6, 5), "not input.ok"),
        (9, True, None, None),
        (16, True, None, None),
        (20, True, None, None),
    ]


def test_every_and_an_error_are_the_reasons() -> None:
    found = explain([parse_module(POLICY, "p.guard")], {"p.deny"}, {"xs": [-1], "ok": False, "text": "x"}, {})
    assert [(e.fired, e.failed_literal) for e in found] == [
        (False, "x > 10"),
        (False, "every x in input.xs { … }"),
        (False, "to_number(input.text) > 1"),
    ]
    assert found[2].error is not None and "to_number" in found[2].error


def test_rules_not_asked_about_are_left_out() -> None:
    assert explain([parse_module(POLICY, "p.guard")], {"other"}, {}, {})[0].fired
    assert explain([parse_module(POLICY, "p.guard")], {"nothing"}, {}, {}) == []
