"""Fuzzing every entry point with hostile input, under a per-example deadline: policy text
(loaded, then evaluated), SQL and command lines through the bundled packs, and the same
under tight request limits. Invariants: nothing raises but `PolicyErrors` at load, every
request gets a decision, and malformed or over-limit input is never allowed. (Batch lines
and store rows are fuzzed in tests/cli/test_boundaries_cli.py and tests/log/test_fuzz_rows.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import subguard
from subguard import CommandRequest, Effect, Engine, SqlRequest
from subguard.engine.policy import policy_from_sources

RULES = Path(__file__).resolve().parents[2] / "rules"

# a hang or a quadratic blow-up shows as a deadline error; a loaded CI machine does not
FUZZ = settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def packs() -> Engine:
    return Engine(subguard.load_policy(RULES))


@pytest.fixture(scope="module")
def tight() -> Engine:
    return Engine(subguard.load_policy(RULES), max_request_bytes=2048)


def _never_allows_the_malformed(decision: Any) -> None:
    assert isinstance(decision, subguard.Decision)
    if decision.errors:
        assert decision.effect is not Effect.ALLOW
    sql = decision.input.get("sql") if isinstance(decision.input, dict) else None
    if sql and sql.get("parse_error"):
        assert decision.effect is not Effect.ALLOW
    command = decision.input.get("command") if isinstance(decision.input, dict) else None
    if command and command.get("sql") and command["sql"].get("parse_error"):
        assert decision.effect is not Effect.ALLOW


# ── SQL ─────────────────────────────────────────────────────────────────────────────

_SQL_WORDS = st.sampled_from([
    "SELECT", "*", "FROM", "users", "WHERE", "id", "=", "1", "OR", "AND", "(", ")", ",", ";",
    "DELETE", "UPDATE", "SET", "DROP", "TABLE", "WITH", "AS", "UNION", "EXECUTE", "'x'", "'",
    '"', "--", "/*", "*/", "$$", "$1", "?", "NOT", "IN", "EXISTS", "INSERT", "INTO", "VALUES",
    "COPY", "PROGRAM", "BEGIN", "END", "DO", "\n", "\x00", "\\", "é", "b0 = b0",
])  # fmt: skip

_sql_soup = st.lists(_SQL_WORDS, max_size=40).map(" ".join)


@st.composite
def _pathological_sql(draw: Any) -> str:
    n = draw(st.sampled_from([0, 1, 7, 99, 101, 499, 501, 1500, 3000]))
    shape = draw(st.sampled_from(["or", "nest", "cte", "paren", "union", "in"]))
    if shape == "or":
        return "DELETE FROM t WHERE " + " OR ".join(f"(b{i} = b{i})" for i in range(n + 1))
    if shape == "nest":
        depth = n % 400
        return "SELECT * FROM " + "(SELECT * FROM " * depth + "t" + ") x" * depth
    if shape == "cte":
        count = n % 800 + 1
        ctes = ", ".join(f"c{i} AS (SELECT * FROM c{i - 1})" if i else "c0 AS (SELECT 1)" for i in range(count))
        return f"WITH {ctes} DELETE FROM t WHERE id IN (SELECT * FROM c{count - 1})"
    if shape == "paren":
        return "DELETE FROM t WHERE " + "(" * n + "id = 1" + ")" * n
    if shape == "union":
        return " UNION ".join(["SELECT 1"] * (n % 700 + 1))
    return "DELETE FROM t WHERE id IN (" + ", ".join(str(i) for i in range(n + 1)) + ")"


@FUZZ
@given(text=st.one_of(st.text(max_size=120), _sql_soup, _pathological_sql()),
       dialect=st.sampled_from([None, "postgres", "mysql", "tsql", "sqlite"]))  # fmt: skip
def test_fuzz_sql_never_raises_and_never_allows_malformed(packs: Engine, text: str, dialect: str | None) -> None:
    decision = packs.check(SqlRequest(text, dialect), subject="agent", resource={"kind": "postgres"})
    _never_allows_the_malformed(decision)


@FUZZ
@given(text=st.one_of(_sql_soup, _pathological_sql()))
def test_fuzz_sql_over_the_request_limit_is_never_allowed(tight: Engine, text: str) -> None:
    decision = tight.check(SqlRequest(text), subject="agent", resource={"kind": "postgres"})
    _never_allows_the_malformed(decision)
    if len(text.encode()) > 2048:
        assert [e.code for e in decision.errors][-1:] == ["too_large"]


# ── command lines ─────────────────────────────────────────────────────────────────────

_SHELL_WORDS = st.sampled_from([
    "rm", "-rf", "/", "$(", ")", "`", "|", ";", "&&", "||", "'", '"', "\\", "\x00", "\n", "\t",
    "psql", "-c", "'DROP TABLE users'", "sudo", "bash", "sh -c", "echo", "curl", "-H",
    "'Authorization: Bearer abc'", "mysql", "-psecret", "PGPASSWORD=x", "<<EOF", "EOF", ">",
    "/dev/sda", "${x}", "$((1+1))", "*", "~", "#", "{a,b}", "xargs", "find", "-exec", "{}", "\\;",
])  # fmt: skip

_shell_soup = st.lists(_SHELL_WORDS, max_size=40).map(" ".join)


@st.composite
def _pathological_commands(draw: Any) -> str:
    n = draw(st.sampled_from([0, 1, 7, 99, 101, 499, 501, 1500, 3000]))
    shape = draw(st.sampled_from(["subst", "backticks", "pipes", "args", "quotes"]))
    if shape == "subst":
        return "echo " + "$(" * (n % 500) + "rm -rf /" + ")" * (n % 500)
    if shape == "backticks":
        return "echo " + "`" * (n % 64) + "rm -rf /" + "`" * (n % 64)
    if shape == "pipes":
        return " | ".join(["cat x"] * (n + 1))
    if shape == "args":
        return "ls " + " ".join(f"-a{i}" for i in range(n))
    return "echo " + "'\"" * n


@FUZZ
@given(text=st.one_of(st.text(max_size=120), _shell_soup, _pathological_commands()))
def test_fuzz_command_lines_never_raise_and_never_allow_malformed(packs: Engine, text: str) -> None:
    decision = packs.check(CommandRequest(text), subject="agent", resource={"kind": "shell"})
    _never_allows_the_malformed(decision)


@FUZZ
@given(text=st.one_of(_shell_soup, _pathological_commands()))
def test_fuzz_command_lines_over_the_request_limit_are_never_allowed(tight: Engine, text: str) -> None:
    decision = tight.check(CommandRequest(text), subject="agent", resource={"kind": "shell"})
    _never_allows_the_malformed(decision)
    if len(text.encode()) > 2048:
        assert decision.effect is Effect.DENY
        assert [e.code for e in decision.errors][-1:] == ["too_large"]


# ── policy text ───────────────────────────────────────────────────────────────────────

_POLICY_WORDS = st.sampled_from([
    "package p\n", "import input.sql.statements\n", "deny contains", "allow", "approve contains",
    "terminate contains", "mask contains", "default allow := true\n", "if", "{", "}", "[", "]",
    "(", ")", "\n", "some s in input.sql.statements", "s.kind", "==", "!=", ":=", "=", "not",
    "every x in", "\"drop\"", "msg", "x", "input.subject.groups", "numbers.range(1, 1e9)",
    "regex.match(\"(a)\\\\1\", s.kind)", "regex.match(\"^(a+)+$\", input.subject.id)",
    "sprintf(\"%999999999d\", [1])", "count(", "with input.subject.id as \"x\"", "|", ";", ",",
    "1e308", "-", "\"\\u0000\"", "#", "\"", "`", "contains", "else", "in", "f(a) := a",
])  # fmt: skip


def _mutations(text: str) -> st.SearchStrategy[str]:
    n = len(text)
    cut = st.tuples(st.integers(0, n), st.integers(0, n)).map(lambda p: text[: min(p)] + text[max(p) :])
    insert = st.tuples(st.integers(0, n), _POLICY_WORDS).map(lambda p: text[: p[0]] + p[1] + text[p[0] :])
    return cut | insert


_PACK_TEXTS = [p.read_text() for p in sorted(RULES.rglob("*.guard")) if not p.name.endswith("_test.guard")]

_policy_text = st.one_of(
    st.lists(_POLICY_WORDS, max_size=40).map(lambda ws: "package p\n" + " ".join(ws)),
    st.text(max_size=200).map(lambda t: "package p\n" + t),
    st.sampled_from(_PACK_TEXTS).flatmap(_mutations),
)


@FUZZ
@given(text=_policy_text)
def test_fuzz_policy_text_is_loaded_or_refused_with_located_errors(text: str) -> None:
    try:
        policy = policy_from_sources([("fuzz.guard", text)])
    except subguard.PolicyErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.code and error.location.path in ("fuzz.guard", "<policy>")
        return
    engine = Engine(policy)
    for request in (SqlRequest("DELETE FROM users"), CommandRequest("rm -rf /")):
        decision = engine.check(request, subject={"id": "agent", "groups": ["agents"]})
        _never_allows_the_malformed(decision)
