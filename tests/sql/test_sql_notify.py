"""LISTEN, UNLISTEN and NOTIFY: read from their tokens as statements of their own kinds,
anything else starting with those words refused, and a NOTIFY's payload never in what
the log stores."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.sql import analyze, redact

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOTIFY_KINDS = {"listen", "unlisten", "notify"}


def _kinds(sql: str, dialect: str = "postgres") -> list[tuple[str, str | None]]:
    return [(s.kind, s.target) for s in analyze(sql, dialect=dialect).statements]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("LISTEN jobs", [("listen", "jobs")]),
        ("listen Jobs", [("listen", "jobs")]),
        ('LISTEN "Jobs Done"', [("listen", "Jobs Done")]),
        ("/* wake */ LiStEn -- a comment\n jobs", [("listen", "jobs")]),
        ("UNLISTEN jobs", [("unlisten", "jobs")]),
        ("UNLISTEN *", [("unlisten", None)]),
        ("NOTIFY jobs", [("notify", "jobs")]),
        ("NOTIFY jobs, 'x'", [("notify", "jobs")]),
        ("NOTIFY jobs, E'a\\nb'", [("notify", "jobs")]),
        ("NOTIFY jobs, $$x$$", [("notify", "jobs")]),
        ("NOTIFY jobs, $t$x$t$", [("notify", "jobs")]),
        ("NOTIFY jobs, U&'d\\0061t'", [("notify", "jobs")]),
        ("LISTEN a; DROP TABLE t", [("listen", "a"), ("drop", "t")]),
        (
            "SELECT 1; NOTIFY a, 'x'; UNLISTEN *",
            [("select", None), ("notify", "a"), ("unlisten", None)],
        ),
    ],
)
def test_listen_notify_have_kinds_and_channels(
    sql: str, expected: list[tuple[str, str | None]]
) -> None:
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is None
    assert _kinds(sql) == expected
    for statement in facts.statements:
        if statement.kind in NOTIFY_KINDS:
            assert statement.object_type == "channel"
            assert not statement.tables_read and not statement.tables_written


@pytest.mark.parametrize(
    "sql",
    [
        "LISTEN",
        "LISTEN *",
        "LISTEN a b",
        "LISTEN 'a'",
        "LISTEN a, 'x'",
        "LISTEN a.b",
        "UNLISTEN",
        "UNLISTEN * a",
        "NOTIFY",
        "NOTIFY a,",
        "NOTIFY a 'x'",
        "NOTIFY a, b",
        "NOTIFY a, 1",
        "NOTIFY a, B'101'",
        "NOTIFY a, X'ff'",
        "NOTIFY a, 'x' 'y'",
        "NOTIFY a, 'x', 'y'",
        "NOTIFY a, 'x' DROP TABLE t",
        "NOTIFY a, ('x')",
        "NOTIFY a, 'x' || 'y'",
        "NOTIFY *, 'x'",
        "LISTEN (SELECT 1)",
    ],
)
def test_anything_else_after_the_words_is_unparseable(sql: str) -> None:
    facts = analyze(sql, dialect="postgres")
    assert [s.kind for s in facts.statements] == ["unparseable"]
    assert facts.parse_error is not None and facts.parse_error.startswith("line 1, col 1:")


def test_the_error_names_the_statement_of_a_script() -> None:
    facts = analyze("SELECT 1; NOTIFY a, 'secret' 'x'", dialect="postgres")
    assert [s.kind for s in facts.statements] == ["select", "unparseable"]
    assert facts.parse_error is not None and facts.parse_error.startswith("statement 2:")
    assert "secret" not in facts.parse_error


@pytest.mark.parametrize("dialect", ["mysql", "sqlite", "tsql", "snowflake", ""])
def test_only_postgres_has_them(dialect: str) -> None:
    assert "listen" not in {k for k, _ in _kinds("LISTEN jobs", dialect)}


def test_a_quoted_listen_is_not_the_keyword() -> None:
    assert [k for k, _ in _kinds('"LISTEN" jobs')] == ["unparseable"]


def test_pg_notify_stays_a_select_calling_a_function() -> None:
    facts = analyze("SELECT pg_notify('jobs', 'x')", dialect="postgres")
    assert [s.kind for s in facts.statements] == ["select"]
    assert "pg_notify" in facts.functions


def test_notify_in_a_do_block_is_a_nested_notify() -> None:
    facts = analyze("DO $$ BEGIN EXECUTE 'NOTIFY jobs, ''x'''; END $$", dialect="postgres")
    assert ("notify", "0.do.execute[0]") in [(s.kind, s.path) for s in facts.statements]


def test_the_payload_is_redacted() -> None:
    assert redact("NOTIFY jobs, 'card 4111'", "postgres") == "notify jobs, ?"


# ----------------------------------------------------------------------------------------
# properties

_WORDS = {
    "listen": ["LISTEN", "listen", "Listen"],
    "unlisten": ["UNLISTEN", "unlisten"],
    "notify": ["NOTIFY", "nOtIfY"],
}
_CHANNELS = st.sampled_from(["jobs", "ch_1", '"Mixed Case"', '"a;b"', "data", "events"])
_PAYLOAD = "zqpayload"
_PAYLOADS = st.sampled_from(
    [
        f"'{_PAYLOAD}'",
        f"E'{_PAYLOAD}\\n'",
        f"$${_PAYLOAD}$$",
        f"$x${_PAYLOAD}$x$",
        f"U&'{_PAYLOAD}'",
    ]
)
_JUNK = st.sampled_from(
    ["*", ",", "1", "DROP", "TABLE", "t", "(", ")", "'a'", "B'1'", ".", "||", "--c\n", "/* c */"]
)
_SPACE = st.sampled_from([" ", "  ", "\n", "\t", " /* c */ "])


@st.composite
def _notify_text(draw: st.DrawFn) -> tuple[str, str | None]:
    """A text and the kind it must get (None: it must not be any of the three)."""
    kind = draw(st.sampled_from(sorted(_WORDS)))
    word = draw(st.sampled_from(_WORDS[kind]))
    shape = draw(st.sampled_from(["valid", "star", "junk"]))
    sp = draw(_SPACE)
    if shape == "valid":
        text = f"{word}{sp}{draw(_CHANNELS)}"
        if kind == "notify" and draw(st.booleans()):
            text += f"{draw(_SPACE)},{draw(_SPACE)}{draw(_PAYLOADS)}"
        return text + draw(st.sampled_from(["", ";", " ;  "])), kind
    if shape == "star":
        return f"{word}{sp}*", "unlisten" if kind == "unlisten" else None
    # the valid form followed by tokens that do not belong to it
    junk = draw(st.lists(_JUNK, min_size=1, max_size=4))
    if all(j.startswith(("--", "/*")) for j in junk):
        junk.append("t")
    if kind == "notify":  # after the payload, so the junk cannot be the payload
        return f"{word}{sp}{draw(_CHANNELS)}, {draw(_PAYLOADS)} {' '.join(junk)}", None
    return f"{word}{sp}{draw(_CHANNELS)} {' '.join(junk)}", None


@SETTINGS
@given(_notify_text())
def test_property_kind_only_for_the_whole_grammar(case: tuple[str, str | None]) -> None:
    text, expected = case
    facts = analyze(text, dialect="postgres")
    kinds = [s.kind for s in facts.statements]
    if expected is None:
        assert not NOTIFY_KINDS & set(kinds), (text, kinds)
        assert "unparseable" in kinds
    else:
        assert kinds == [expected], (text, kinds)
        assert facts.parse_error is None


@SETTINGS
@given(_notify_text())
def test_property_the_payload_is_never_in_what_the_log_stores(case: tuple[str, str | None]) -> None:
    text, _ = case
    facts = analyze(text, dialect="postgres")
    stored = orjson.dumps(
        {
            "text": facts.redacted,
            "error": facts.parse_error,
            "input": facts.to_input(),
        },
        default=lambda v: sorted(v) if isinstance(v, frozenset) else str(v),
    ).decode()
    assert _PAYLOAD not in stored
    assert _PAYLOAD not in redact(text, "postgres")


@SETTINGS
@given(st.text(max_size=80), st.sampled_from(["LISTEN ", "UNLISTEN ", "NOTIFY ", "notify x, ", ""]))
def test_property_never_raises_and_needs_the_word(tail: str, head: str) -> None:
    text = head + tail
    facts = analyze(text, dialect="postgres")
    for statement in facts.statements:
        if statement.kind in NOTIFY_KINDS:
            assert statement.kind.upper() in text.upper()
