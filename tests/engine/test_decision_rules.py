"""Decision semantics the engine owns: complete `allow` definitions that disagree, the
default `allow`, and the rule index built from what definitions require of `input`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subguard
from subguard.engine.decision import RuleIndex, guard
from subguard.lang import EACH


def _engine(tmp_path: Path, text: str) -> subguard.Engine:
    (tmp_path / "p.guard").write_text(text, encoding="utf-8")
    return subguard.Engine(subguard.load_policy(tmp_path))


# ── issue 9: two complete definitions of a decision rule with different values ──────


def test_allow_true_and_allow_false_in_one_package_decide_allow_with_no_conflict(tmp_path: Path) -> None:
    engine = _engine(tmp_path, "package p\n\nallow := true\n\nallow := false\n")
    decision = engine.check(subguard.SqlRequest("SELECT 1"), subject="agent")
    assert decision.effect is subguard.Effect.DENY
    assert [(e.code, e.package, e.rule, e.location) for e in decision.errors] == [
        ("conflict", "p", "allow", f"{tmp_path / 'p.guard'}:5")
    ]


def test_conditional_allow_definitions_conflict_only_when_both_hold(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        'package p\n\nallow := true if input.subject.id == "a"\n\nallow := false if startswith(input.subject.id, "a")\n',
    )
    assert engine.check(subguard.SqlRequest("SELECT 1"), subject="a").errors[0].code == "conflict"
    refused = engine.check(subguard.SqlRequest("SELECT 1"), subject="ab")
    assert (refused.effect, refused.errors) == (subguard.Effect.DENY, ())


def test_allow_definitions_of_other_packages_do_not_conflict(tmp_path: Path) -> None:
    (tmp_path / "a.guard").write_text("package a\n\nallow := true\n", encoding="utf-8")
    engine = _engine(tmp_path, "package p\n\nallow := false\n")
    decision = engine.check(subguard.SqlRequest("SELECT 1"), subject="agent")
    assert (decision.effect, decision.errors) == (subguard.Effect.ALLOW, ())


def test_allow_false_overrides_its_packages_default_true(tmp_path: Path) -> None:
    # Rego: the default applies only when no definition produced a value
    engine = _engine(tmp_path, 'package p\n\ndefault allow := true\n\nallow := false if input.subject.id == "x"\n')
    assert engine.check(subguard.SqlRequest("SELECT 1"), subject="x").effect is subguard.Effect.DENY
    assert engine.check(subguard.SqlRequest("SELECT 1"), subject="y").effect is subguard.Effect.ALLOW


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.booleans(), min_size=1, max_size=4))
def test_allow_is_never_the_decision_when_its_definitions_disagree(tmp_path_factory: pytest.TempPathFactory, values: list[bool]) -> None:
    tmp_path = tmp_path_factory.mktemp("p")
    text = "package p\n\n" + "\n".join(f"allow := {str(v).lower()}" for v in values) + "\n"
    decision = _engine(tmp_path, text).check(subguard.SqlRequest("SELECT 1"), subject="agent")
    if all(values):
        assert decision.effect is subguard.Effect.ALLOW
    else:
        assert decision.effect is subguard.Effect.DENY
        assert [e.code for e in decision.errors] == (["conflict"] if any(values) else [])


# ── the index over what definitions require ─────────────────────────────────────────


def _definitions(tmp_path: Path, text: str) -> tuple[subguard.lang.Definition, ...]:
    (tmp_path / "p.guard").write_text(text, encoding="utf-8")
    return subguard.load_policy(tmp_path).compiled.definitions


def test_requirements_are_read_through_iteration_variables_and_imports(tmp_path: Path) -> None:
    definitions = _definitions(
        tmp_path,
        "package p\n\nimport input.sql.statements as stmts\n\n"
        'deny contains "d" if {\n    some s in stmts\n    s.kind in {"drop", "truncate"}\n    "users" in s.tables_read\n}\n',
    )
    (definition,) = definitions
    assert [(r.path, r.values) for r in definition.requires] == [
        (("input", "sql", "statements", EACH, "kind"), frozenset({"drop", "truncate"})),
        (("input", "sql", "statements", EACH, "tables_read", EACH), frozenset({"users"})),
    ]
    assert all(r.after_plain for r in definition.requires)  # nothing before them can fail
    assert guard(definition) == (frozenset({"drop", "truncate"}), frozenset({"users"}))


def test_a_definition_using_with_requires_nothing(tmp_path: Path) -> None:
    (definition,) = _definitions(
        tmp_path,
        'package p\n\nk := input.sql.statements\n\ndeny contains "d" if {\n'
        '    some s in input.sql.statements\n    s.kind == "drop"\n    k with input.sql as {}\n}\n',
    )
    assert definition.requires == ()


def test_a_rule_requiring_two_statements_of_different_kinds_fires_the_index_once_skipped_it(tmp_path: Path) -> None:
    # each kind is required of a different statement: neither excludes the other
    engine = _engine(
        tmp_path,
        'package p\n\ndefault allow := true\n\ndeny contains "both" if {\n    some s in input.sql.statements\n'
        '    s.kind == "select"\n    some t in input.sql.statements\n    t.kind == "drop"\n}\n',
    )
    decision = engine.check(subguard.SqlRequest("SELECT 1; DROP TABLE users"), subject="agent")
    assert decision.effect is subguard.Effect.DENY
    assert [r.message for r in decision.reasons] == ["both"]


def test_the_index_finds_exactly_the_definitions_an_input_can_fire() -> None:
    index = RuleIndex(
        [
            (None, None),
            (frozenset({"drop"}), None),
            (None, frozenset({"users"})),
            (frozenset({"delete"}), frozenset({"users", "orders"})),
        ]
    )
    assert index.always == (0,)
    sql = {"statements": ({"kind": "delete"},), "tables_read": frozenset(), "tables_written": frozenset({"orders"})}
    assert list(index.extra({"sql": sql})) == [3]
    sql = {"statements": ({"kind": "drop"}, {"kind": "select"}), "tables_read": frozenset({"users"}), "tables_written": frozenset()}
    assert list(index.extra({"sql": sql})) == [1, 2]
    assert list(index.extra({"sql": None})) == []


# ── the index never hides a definition that fires ──────────────────────────────────

_KINDS = ("select", "insert", "delete", "drop")
_NAMES = ("users", "orders", "audit")

_CONDITIONS = st.sampled_from(
    [
        'some s in input.sql.statements\n    s.kind == "{k}"',
        'some s in input.sql.statements\n    s.kind in {{"{k}", "{k2}"}}',
        'some s in input.sql.statements\n    s.kind == "{k}"\n    "{t}" in s.tables_read',
        'some s in input.sql.statements\n    some t in s.tables_written\n    t == "{t}"',
        'some t in input.sql.tables_read\n    t == "{t}"',
        '"{t}" in input.sql.tables_written',
        'some s in input.sql.statements\n    s.kind == "{k}"\n    some u in input.sql.statements\n    u.kind == "{k2}"',
        'input.subject.id == "{t}"',
        'some s in input.sql.statements\n    not s.kind == "{k}"',
    ]
)


@st.composite
def _rules(draw: st.DrawFn) -> str:
    lines = ["package p", ""]
    for i in range(draw(st.integers(1, 6))):
        condition = draw(_CONDITIONS).format(
            k=draw(st.sampled_from(_KINDS)), k2=draw(st.sampled_from(_KINDS)), t=draw(st.sampled_from(_NAMES))
        )
        lines += [f'deny contains "r{i}" if {{', f"    {condition}", "}", ""]
    return "\n".join(lines)


@st.composite
def _inputs(draw: st.DrawFn) -> dict[str, object]:
    tables = st.lists(st.sampled_from(_NAMES), max_size=2)
    statements = draw(
        st.lists(
            st.fixed_dictionaries(
                {"kind": st.sampled_from(_KINDS), "tables_read": tables, "tables_written": tables}
            ),
            max_size=3,
        )
    )
    return {
        "subject": {"id": draw(st.sampled_from(_NAMES))},
        "sql": {
            "statements": statements,
            "tables_read": sorted({t for s in statements for t in s["tables_read"]}),
            "tables_written": sorted({t for s in statements for t in s["tables_written"]}),
        },
    }


@settings(max_examples=60, deadline=None)
@given(text=_rules(), inputs=st.lists(_inputs(), min_size=1, max_size=5))
def test_the_index_decides_as_running_every_definition_does(text: str, inputs: list[dict[str, object]]) -> None:
    from subguard.engine.decision import Decisions
    from subguard.engine.policy import policy_from_sources

    indexed = policy_from_sources([("p.guard", text)])
    reference = Decisions(policy_from_sources([("p.guard", text)]).compiled, indexed=False)
    for raw in inputs:
        document = indexed.compiled.conform(raw)
        assert indexed.decisions.outputs(document, {}) == reference.outputs(document, {}), text


# The index looks a statement's tables up in `input.sql.tables_read`/`tables_written`
# (`decision.guard`): a statement whose tables escaped those sets would hide a rule
# naming the table from the index, and a deny would never run. Hold the analyser to it.
_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sqlglot"
_NESTED = [
    "EXECUTE 'DELETE FROM users'",
    "DO $$ BEGIN DELETE FROM users; END $$",
    "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
    "SELECT * FROM a WHERE x IN (SELECT y FROM payroll)",
    "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM users $$ LANGUAGE sql",
    "PREPARE p AS DELETE FROM users",
    "CREATE VIEW v AS SELECT * FROM payroll",
    "INSERT INTO t SELECT * FROM payroll; DROP TABLE audit",
]


def test_every_statements_tables_are_in_the_requests_tables_the_index_reads() -> None:
    from subguard.sql import analyze

    lines = [ln for ln in (_CORPUS / "identity.sql").read_text().splitlines() if ln.strip()]
    for text in [*_NESTED, *lines]:
        sql = analyze(text, dialect="postgres" if text in _NESTED else None).to_input()
        tables = sql["tables_read"] | sql["tables_written"]
        for statement in sql["statements"]:
            assert statement["tables_read"] <= tables, text
            assert statement["tables_written"] <= tables, text
