"""The engine's hot path decides as the two-step reference does.

`Decisions.decide` files what fired by rule in one pass and combines once; the
reference runs every definition (no index, no fused function), lists what fired
(`Decisions.outputs`) and combines it (`combine`). On generated policies — every
decision rule, several packages, `allow` that produces false (conflicts), open and
closed defaults, mask sets and objects (with conflicting strategies), rules that fail
at run time — and generated inputs, both give the same effect, reasons, masks and errors.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.engine.decision import FILTER_PATHS, Decisions, RuleIndex, combine, reader, values_at
from subguard.engine.policy import policy_from_sources
from subguard.lang import EACH

_KINDS = ("select", "insert", "delete", "drop")
_TABLES = ("users", "orders", "audit")
_GROUPS = ("dba", "ci", "agents")

_CONDITIONS = (
    'some s in input.sql.statements\n    s.kind == "{k}"',
    'some s in input.sql.statements\n    s.kind in {{"{k}", "{k2}"}}',
    'some s in input.sql.statements\n    s.kind == "{k}"\n    "{t}" in s.tables_read',
    'some t in input.sql.tables_written\n    t == "{t}"',
    '"{t}" in input.sql.tables_read',
    '"{g}" in input.subject.groups',
    'not "{g}" in input.subject.groups',
    "count(input.sql.statements) > 1",
    # fails at run time when there is no statement: a rule error
    "1 / count(input.sql.statements) > 0",
    "true",
    # requirements on `FILTER_PATHS`: a statement's functions, a column's tags
    'some s in input.sql.statements\n    some f in s.functions\n    f in {{"{f}", "{f2}"}}',
    'some s in input.sql.statements\n    s.kind == "{k}"\n    "{f}" in s.functions',
    'some c in input.sql.columns_read\n    "{tag}" in c.tags',
    'some c in input.sql.columns_read\n    some tag in c.tags\n    tag in {{"{tag}", "{tag2}"}}\n    "{g}" in input.subject.groups',
    # fails at run time before its requirement: never skipped by what it requires
    'to_number(input.subject.id) > 0\n    some c in input.sql.columns_read\n    "{tag}" in c.tags',
)
_FUNCTIONS = ("now", "pg_read_file", "lo_export")
_TAGS = ("pii", "pci", "secret")

_HEADS = (
    'terminate contains "t{i}" if {{',
    'deny contains "d{i}" if {{',
    'deny contains msg if {{\n    some z in input.sql.statements\n    msg := sprintf("d{i} %s", [z.kind])',
    'approve contains "a{i}" if {{',
    'approve contains {{"n": {i}}} if {{',
    "allow if {{",
    "allow := false if {{",
    'mask contains "c{i}" if {{',
    'mask contains {{"table": "{t}", "column": "c{i}"}} if {{',
    'mask["c{j}"] := "{strategy}" if {{',
)


@st.composite
def _package(draw: st.DrawFn, name: str) -> str:
    lines = [f"package {name}", ""]
    default = draw(st.sampled_from(["", "default allow := true", "default allow := false"]))
    if default:
        lines += [default, ""]
    heads = draw(st.lists(st.sampled_from(_HEADS), min_size=1, max_size=7))
    object_mask = any(h.startswith("mask[") for h in heads)
    for i, head in enumerate(heads):
        if object_mask and head.startswith("mask contains"):
            head = _HEADS[-1]  # one kind of mask rule per package
        values = {
            "i": i,
            "j": draw(st.integers(0, 1)),
            "t": draw(st.sampled_from(_TABLES)),
            "strategy": draw(st.sampled_from(["hash", "redact"])),
        }
        condition = draw(st.sampled_from(_CONDITIONS)).format(
            k=draw(st.sampled_from(_KINDS)),
            k2=draw(st.sampled_from(_KINDS)),
            t=draw(st.sampled_from(_TABLES)),
            g=draw(st.sampled_from(_GROUPS)),
            f=draw(st.sampled_from(_FUNCTIONS)),
            f2=draw(st.sampled_from(_FUNCTIONS)),
            tag=draw(st.sampled_from(_TAGS)),
            tag2=draw(st.sampled_from(_TAGS)),
        )
        lines += [head.format(**values), f"    {condition}", "}", ""]
    return "\n".join(lines)


@st.composite
def _inputs(draw: st.DrawFn) -> dict[str, object]:
    tables = st.lists(st.sampled_from(_TABLES), max_size=2)
    statements = draw(
        st.lists(
            st.fixed_dictionaries(
                {"kind": st.sampled_from(_KINDS), "tables_read": tables, "tables_written": tables},
                optional={
                    "functions": st.lists(st.sampled_from(_FUNCTIONS), max_size=2, unique=True)
                },
            ),
            max_size=3,
        )
    )
    columns = st.fixed_dictionaries(
        {"table": st.sampled_from(_TABLES), "column": st.sampled_from(["a", "b"])},
        optional={"tags": st.lists(st.sampled_from(_TAGS), max_size=2, unique=True)},
    )
    return {
        "subject": {
            "id": "someone",
            "groups": draw(st.lists(st.sampled_from(_GROUPS), max_size=2, unique=True)),
        },
        "sql": {
            "statements": statements,
            "tables_read": sorted({t for s in statements for t in s["tables_read"]}),
            "tables_written": sorted({t for s in statements for t in s["tables_written"]}),
            "columns_read": draw(st.lists(columns, max_size=3)),
        },
    }


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True).flatmap(
        lambda ns: st.tuples(*(_package(f"p{n}") for n in ns))
    ),
    inputs=st.lists(_inputs(), min_size=1, max_size=4),
)
def test_decide_equals_combining_the_outputs_of_every_definition(
    texts: tuple[str, ...], inputs: list[dict[str, object]]
) -> None:
    sources = [(f"p{i}.guard", text) for i, text in enumerate(texts)]
    fast = policy_from_sources(sources)
    reference = Decisions(policy_from_sources(sources).compiled, indexed=False)
    for raw in inputs:
        document = fast.compiled.conform(raw)
        want = combine(reference.outputs(document, {}))
        assert fast.decisions.decide(document, {}) == want, texts
        assert combine(fast.decisions.outputs(document, {})) == want, texts


def test_decide_reports_a_conflicting_allow_and_mask_strategies() -> None:
    text = (
        "package p\n\nallow if true\n\nallow := false if true\n\n"
        'mask["c"] := "hash" if true\n\nmask["c"] := "redact" if true\n'
    )
    policy = policy_from_sources([("p.guard", text)])
    document = policy.compiled.conform({"subject": {"id": "x"}})
    combined = policy.decisions.decide(document, {})
    assert combined == combine(policy.decisions.outputs(document, {}))
    assert combined.effect.value == "deny"
    assert [e.code for e in combined.errors] == ["conflict"]
    assert [(e.package, e.rule) for e in combined.errors] == [("p", "allow")]


# ── the index keeps its answers per input shape ────────────────────────────────────

_SETS = st.frozensets(st.sampled_from(_TABLES), max_size=2)
_GUARDS = st.lists(
    st.tuples(
        st.none() | st.frozensets(st.sampled_from(_KINDS), min_size=1, max_size=2),
        st.none() | _SETS,
    ),
    min_size=1,
    max_size=8,
)


def _uncached(index: RuleIndex, sql: dict[str, object]) -> list[int]:
    kinds = {s["kind"] for s in sql["statements"]}  # type: ignore[attr-defined]
    chosen = {i for k in kinds for i in index.by_kind.get(k, ())}
    for t in (*sql["tables_read"], *sql["tables_written"]):  # type: ignore[misc]
        chosen.update(index.by_table.get(t, ()))
        for k in kinds:
            chosen.update(index.by_both.get((k, t), ()))
    return sorted(chosen)


@settings(max_examples=200, deadline=None)
@given(
    guards=_GUARDS,
    shapes=st.lists(
        st.fixed_dictionaries(
            {
                "statements": st.lists(
                    st.fixed_dictionaries({"kind": st.sampled_from(_KINDS)}), max_size=3
                ).map(tuple),
                "tables_read": _SETS,
                "tables_written": _SETS,
            }
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_the_index_answers_each_shape_as_looking_it_up_anew(
    guards: list, shapes: list[dict[str, object]]
) -> None:
    index = RuleIndex(guards)
    for sql in [*shapes, *shapes]:  # the second time from what it kept
        want = _uncached(index, sql) if index.indexed else []
        assert list(index.extra({"sql": sql})) == want
        # a document not in the value model (lists) is looked up, not kept
        as_lists = {
            **sql,
            "tables_read": sorted(sql["tables_read"]),
            "tables_written": sorted(sql["tables_written"]),
        }  # type: ignore[call-overload]
        assert list(index.extra({"sql": as_lists})) == want


# ── the index reads the filter paths as `values_at` does ───────────────────────────

_LEAVES = st.sampled_from([*_FUNCTIONS, *_TAGS, "other"]) | st.none() | st.integers(0, 2)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.lists(inner, max_size=3)
        | st.frozensets(_LEAVES, max_size=3)
        | st.dictionaries(
            st.sampled_from(["functions", "tags", "statements", "columns_read", "x"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    sql=st.dictionaries(st.sampled_from(["statements", "columns_read", "x"]), _VALUES, max_size=2)
    | _VALUES,
    subject=st.dictionaries(st.sampled_from(["groups", "x"]), _VALUES, max_size=2) | _VALUES,
    relevant=st.frozensets(st.sampled_from([*_FUNCTIONS, *_TAGS, "other"]), min_size=1),
)
def test_each_reader_answers_as_walking_the_path(
    sql: object, subject: object, relevant: frozenset[str]
) -> None:
    document = {"sql": sql, "subject": subject}
    for path in (*FILTER_PATHS, ("input", "subject", "groups", EACH)):
        walked = values_at(document, path)
        assert reader(path, relevant)(document) == (None if walked is None else walked & relevant)


def test_walking_a_path_reads_what_generated_code_reads() -> None:
    path = ("input", "sql", "statements", EACH, "functions", EACH)
    statements = (
        {"functions": frozenset({"now"})},
        {"kind": "select"},
        {"functions": ("lo_export",)},
    )
    assert values_at({"sql": {"statements": statements}}, path) == {"now", "lo_export"}
    assert values_at({"sql": {"statements": ()}}, path) == frozenset()
    assert values_at({"sql": None}, path) == frozenset()  # no SQL: no value, no error
    assert values_at({"sql": {"statements": 3}}, path) is None  # iterating it fails: unknown
    assert values_at({"sql": {"statements": ({"functions": "now"},)}}, path) is None
    # a value that is no string is none of the strings a requirement names
    assert values_at({"sql": {"statements": ({"functions": ({"a": 1}, "now")},)}}, path) == {"now"}
    # a path of another shape is walked
    groups = ("input", "subject", "groups", EACH)
    document = {"subject": {"groups": frozenset({"dba", "ci"})}}
    assert reader(groups, frozenset({"dba", "agents"}))(document) == {"dba"}


def test_a_definition_that_fails_before_its_requirement_is_not_skipped_for_it() -> None:
    text = (
        "package p\n\ndefault allow := true\n\n"
        'mask contains "m0" if {\n    to_number(input.subject.id) > 0\n'
        '    some c in input.sql.columns_read\n    "pii" in c.tags\n}\n\n'
        'mask contains "m1" if {\n    some c in input.sql.columns_read\n'
        '    c.in_output\n    "pii" in c.tags\n}\n'
    )
    policy = policy_from_sources([("p.guard", text)])
    # only the second states its requirement after literals that cannot fail
    assert policy.decisions.index.filters == {1: ((1, frozenset({"pii"})),)}
    raw = {"subject": {"id": "someone"}, "sql": {"statements": [], "columns_read": []}}
    combined = policy.decisions.decide(policy.compiled.conform(raw), {})
    assert combined.effect.value == "deny"
    assert [(e.code, e.location) for e in combined.errors] == [("builtin_error", "p.guard:5")]
