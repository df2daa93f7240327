"""What the language server computes, in-process: the schema's docs, where a policy's
directory is, diagnostics (codes and spans), hover and completion, `load_policy(texts=)`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.cli._lsp_analysis import (
    Span,
    complete,
    diagnose,
    hover,
    policy_paths,
    policy_root,
)
from subguard.engine import load_policy
from subguard.engine.schema import FIELD_DOCS, RECORDS
from subguard.errors import PolicyErrors

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"

POLICY = """package p
import input.sql.statements
import input.command as cmd

# input.sql.nothing here
deny contains msg if {
    some s in statements
    s.kind == "drop"
    some i, inv in cmd.pipeline
    inv.stdin.kind == "pipe"
    t := input.sql.statements[0].tables[_]
    msg := t.qualified
    x := "input.sql"
}
"""


def at(text: str, line: int, word: str, nth: int = 0) -> tuple[int, int]:
    """The position inside the `nth` occurrence of `word` on `line`."""
    content = text.split("\n")[line]
    index = -1
    for _ in range(nth + 1):
        index = content.index(word, index + 1)
    return line, index + 1


# ── the schema's docs ────────────────────────────────────────────────────────────────


def test_every_field_of_the_schema_has_a_doc_line() -> None:
    fields = {f"{record}.{name}" for record, names in RECORDS.items() for name in names}
    assert set(FIELD_DOCS) == fields
    for key, doc in FIELD_DOCS.items():
        assert doc.strip() and doc[0].isupper() and doc.endswith((".", "…")), key
        assert "\n" not in doc, key


# ── where a document's policy is ─────────────────────────────────────────────────────


def test_the_policy_directory_is_the_highest_parent_holding_policy_files(tmp_path: Path) -> None:
    (tmp_path / "rules" / "sql" / "new").mkdir(parents=True)
    (tmp_path / "rules" / "bare" / "deep").mkdir(parents=True)
    (tmp_path / "rules" / "base.guard").write_text("package base\n")
    (tmp_path / "rules" / "sql" / "x.guard").write_text("package x\n")
    (tmp_path / "other").mkdir()
    document = tmp_path / "rules" / "sql" / "x.guard"
    assert policy_root(document, folders=[tmp_path]) == tmp_path / "rules"
    # a new directory joins the policy above it; one without policy files stops the walk
    assert (
        policy_root(tmp_path / "rules" / "sql" / "new" / "x.guard", folders=[tmp_path])
        == tmp_path / "rules"
    )
    assert policy_root(tmp_path / "rules" / "bare" / "deep" / "x.guard", folders=[tmp_path]) == (
        tmp_path / "rules" / "bare" / "deep"
    )
    # a root given on the command line wins: the innermost holding the document
    assert (
        policy_root(document, roots=[tmp_path, tmp_path / "rules" / "sql"])
        == tmp_path / "rules" / "sql"
    )
    assert (
        policy_root(document, roots=[tmp_path / "other"], folders=[tmp_path]) == tmp_path / "rules"
    )
    # never above the workspace folder, even when that holds policy files
    (tmp_path / "top.guard").write_text("package top\n")
    assert policy_root(document, folders=[tmp_path / "rules"]) == tmp_path / "rules"
    assert policy_root(document, folders=[tmp_path]) == tmp_path


def test_a_file_outside_every_folder_loads_only_the_files_beside_it(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.guard", "a_test.guard", "sub/b.guard", "data.schema.json", "notes.txt"):
        (tmp_path / name).write_text("")
    paths = policy_paths(tmp_path / "a.guard")
    assert paths == [str(tmp_path / "a.guard"), str(tmp_path / "data.schema.json")]
    assert str(tmp_path / "a_test.guard") in policy_paths(tmp_path / "a_test.guard")
    # inside a workspace folder (or a root): the directory, walked
    assert policy_paths(tmp_path / "a.guard", folders=[tmp_path]) == [str(tmp_path)]
    assert policy_paths(tmp_path / "a.guard", roots=[tmp_path]) == [str(tmp_path)]


def test_the_repository_packs_compile_clean_rules_and_tests() -> None:
    for name in ("sql/pii.guard", "sql/pii_test.guard", "base_test.guard"):
        path = RULES / name
        found = diagnose(path, path.read_text(), folders=[ROOT])
        assert found == {str(path): []}, name


# ── diagnostics ──────────────────────────────────────────────────────────────────────


def test_a_typo_is_reported_with_its_code_and_exact_span(tmp_path: Path) -> None:
    document = tmp_path / "p.guard"
    text = 'package p\n\ndeny contains "x" if {\n    some s in input.sql.statements\n    s.kinds == "drop"\n}\n'
    found = diagnose(document, text)
    [problem] = found[str(document)]
    assert problem.code == "unknown_field"
    assert problem.span == Span(4, 6, 4, 11)  # `kinds`, 0-based, end exclusive
    assert "`kind`" in problem.message  # the did-you-mean hint travels with the message


def test_a_parse_error_spans_the_token_it_stopped_at(tmp_path: Path) -> None:
    document = tmp_path / "p.guard"
    found = diagnose(document, "package p\n\nallow if {\n    input.subject.id ==\n}\n")
    [problem] = found[str(document)]
    assert problem.code == "parse_error"
    assert problem.span == Span(4, 0, 4, 1)


def test_test_files_compile_with_the_test_builtins_and_rule_files_without(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text(
        'package p\n\ndeny contains "no drops" if input.sql.statements[_].kind == "drop"\n'
    )
    test_text = (
        "package p_test\n\ntest_drop if {\n"
        '    d := decide(sql_request("DROP TABLE t", {}))\n    d.effect == "deny"\n}\n'
    )
    assert diagnose(tmp_path / "p_test.guard", test_text) == {str(tmp_path / "p_test.guard"): []}
    found = diagnose(tmp_path / "q.guard", test_text.replace("p_test", "q"))
    assert {p.code for p in found[str(tmp_path / "q.guard")]} == {"unknown_function"}


def test_an_unsaved_buffer_stands_for_its_file_and_errors_land_in_their_file(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib.guard"
    lib.write_text('package lib\n\nis_admin(id) if id in {"root"}\n')
    main = tmp_path / "main.guard"
    text = 'package main\n\ndeny contains "admin" if data.lib.is_admin(input.subject.id)\n'
    assert diagnose(main, text) == {str(main): []}
    # the buffer of lib renames the function: main's call no longer resolves
    renamed = 'package lib\n\nis_root(id) if id in {"root"}\nbad := input.subject.idd\n'
    found = diagnose(main, text, open_texts={str(lib): renamed})
    assert [(p.code, p.span) for p in found[str(main)]] == [
        ("unknown_function", Span(2, 25, 2, 60))
    ]
    assert [(p.code, p.span) for p in found[str(lib)]] == [("unknown_field", Span(3, 21, 3, 24))]


def test_without_a_root_sibling_directories_are_separate_policies(tmp_path: Path) -> None:
    (tmp_path / "shell").mkdir()
    (tmp_path / "sql").mkdir()
    (tmp_path / "shell" / "lib.guard").write_text('package lib\n\nis_admin(id) if id in {"root"}\n')
    main = tmp_path / "sql" / "main.guard"
    text = 'package main\n\ndeny contains "admin" if data.lib.is_admin(input.subject.id)\n'
    assert [p.code for p in diagnose(main, text, folders=[tmp_path])[str(main)]] == [
        "unknown_function"
    ]
    assert diagnose(main, text, roots=[tmp_path]) == {str(main): []}


def test_a_document_without_a_file_compiles_alone() -> None:
    found = diagnose(None, "package p\nallow if input.sql.statements[0].kinds == 1\n")
    [(_, problems)] = found.items()
    assert [(p.code, p.span) for p in problems] == [("unknown_field", Span(1, 33, 1, 38))]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x01\x02 garbage ((( {{",
        "package p\nallow if " + "[" * 5000 + "]" * 5000 + "\n",
        "package p\nallow if " + "(" * 3000 + "1" + ")" * 3000 + "\n",
        "package p\n" + "x := 1 " * 20000 + "\n",
        'package p\nallow if "unterminated\n',
        '\ufeffpackage p\nallow if input.subject.id == "é😀"\n',
    ],
)
def test_bad_text_gives_diagnostics_never_an_exception(tmp_path: Path, text: str) -> None:
    document = tmp_path / "p.guard"
    found = diagnose(document, text)
    lines = text.split("\n")
    for problems in found.values():
        for problem in problems:
            assert problem.code and problem.code != "internal_error"
            assert 0 <= problem.span.line <= problem.span.end_line < len(lines)
    # hover and completion read it without raising; only `input` is known there
    found = hover(text, 1, 12)
    assert found is None or found.path == "input"
    assert complete(text, 1, 12) == []


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('input.sql[_]{}() \n\t"#:=some every in s x.kind é')),
        max_size=120,
    ),
    st.integers(0, 6),
    st.integers(0, 40),
)
def test_hover_and_completion_never_raise(text: str, line: int, char: int) -> None:
    found = hover(text, line, char)
    if found is not None:
        assert found.type and found.path
        assert found.span.line == line and found.span.char <= char <= found.span.end_char
    for field in complete(text, line, char):
        assert field.record in FIELD_DOCS


_POLICY_PIECES = st.sampled_from(
    ["package p\n", "import input.sql.statements\n", "deny contains ", '"x"', " if ", "{", "}",
     "\n", "    ", "some s in statements", "s.kind", "s.kinds", " == ", "input.", "sql.", "[_]",
     "not ", ":=", "x", "count(", ")", "# note", "\t", "é😀", "every x in ", "1", "\r\n"]
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(_POLICY_PIECES, max_size=30).map("".join))
def test_diagnostics_of_any_text_are_located_inside_it(text: str) -> None:
    [(_, problems)] = diagnose(None, text).items()
    lines = text.split("\n")
    for problem in problems:
        assert problem.code != "internal_error"
        start, end = (problem.span.line, problem.span.char), (problem.span.end_line, problem.span.end_char)
        assert start <= end
        assert 0 <= start[0] <= end[0] < len(lines)
        assert end[1] <= len(lines[end[0]])


# ── hover and completion ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("line", "word", "path", "type_", "doc"),
    [
        (1, "statements", "input.sql.statements", "array<Statement>", FIELD_DOCS["Sql.statements"]),
        (6, "statements", "statements", "array<Statement>", FIELD_DOCS["Sql.statements"]),
        (6, "s ", "s", "Statement", ""),
        (7, "kind", "s.kind", "string", FIELD_DOCS["Statement.kind"]),
        (2, "cmd", "cmd", "Command | null", FIELD_DOCS["Input.command"]),
        (8, "i,", "i", "number", ""),
        (9, "stdin", "inv.stdin", "Stdin | null", FIELD_DOCS["Invocation.stdin"]),
        (9, "kind", "inv.stdin.kind", "string", FIELD_DOCS["Stdin.kind"]),
        (
            10,
            "tables",
            "input.sql.statements[_].tables",
            "array<Table>",
            FIELD_DOCS["Statement.tables"],
        ),
        (11, "qualified", "t.qualified", "string", FIELD_DOCS["Table.qualified"]),
        (
            10,
            "input",
            "input",
            "Input",
            "The request's facts, as the input document's schema types them.",
        ),
    ],
)
def test_hover_names_the_field_its_type_and_doc(
    line: int, word: str, path: str, type_: str, doc: str
) -> None:
    found = hover(POLICY, *at(POLICY, line, word))
    assert found is not None
    assert (found.path, found.type, found.doc) == (path, type_, doc)
    assert f"`{type_}`" in found.markdown()


@pytest.mark.parametrize(
    ("line", "word"),
    [(4, "nothing"), (12, "sql"), (5, "msg"), (0, "package"), (7, '"drop"')],
)
def test_no_hover_in_comments_strings_or_on_unknown_names(line: int, word: str) -> None:
    assert hover(POLICY, *at(POLICY, line, word)) is None


def test_hover_spans_the_name_under_the_cursor() -> None:
    found = hover(POLICY, 7, 7)
    assert found is not None and found.span == Span(7, 6, 7, 10)


def test_completion_lists_the_record_after_the_dot() -> None:
    lines = POLICY.split("\n")
    assert [f.name for f in complete(POLICY, 7, lines[7].index(".") + 1)] == list(
        RECORDS["Statement"]
    )
    # a partial name after the dot: the record's fields all the same (the editor filters)
    assert [f.name for f in complete(POLICY, 7, lines[7].index(".") + 3)] == list(
        RECORDS["Statement"]
    )
    sql = [(f.name, f.type, f.doc) for f in complete(POLICY, 10, lines[10].index("statements"))]
    assert sql == [(n, t, FIELD_DOCS[f"Sql.{n}"]) for n, t in RECORDS["Sql"].items()]
    assert [f.name for f in complete(POLICY, 10, lines[10].index("tables"))] == list(
        RECORDS["Statement"]
    )
    assert [f.name for f in complete(POLICY, 9, lines[9].index("kind"))] == list(RECORDS["Stdin"])
    assert complete(POLICY, 7, 5) == []  # no dot before the cursor
    assert complete(POLICY, 4, 12) == []  # in a comment
    assert complete("package p\nallow if input.subject.claims.", 1, 31) == []  # dynamic: no fields


# ── load_policy(texts=) ──────────────────────────────────────────────────────────────


def test_load_policy_reads_given_texts_instead_of_the_disk(tmp_path: Path) -> None:
    (tmp_path / "a.guard").write_text("package a\n\nallow if input.subject.idd\n")
    with pytest.raises(PolicyErrors) as raised:
        load_policy(tmp_path)
    assert [e.code for e in raised.value.errors] == ["unknown_field"]
    fixed = {str(tmp_path / "a.guard"): 'package a\n\nallow if input.subject.id == "x"\n'}
    assert load_policy(tmp_path, texts=fixed).packages == ("a",)
    # a relative spelling of the same file is the same file
    relative = os.path.relpath(tmp_path / "a.guard")
    assert load_policy(tmp_path, texts={relative: fixed[str(tmp_path / "a.guard")]}).packages == (
        "a",
    )


def test_load_policy_loads_a_named_file_that_exists_only_as_text(tmp_path: Path) -> None:
    (tmp_path / "a.guard").write_text("package a\n\ndefault allow := false\n")
    new = tmp_path / "b.guard"
    policy = load_policy(
        [tmp_path, new], texts={str(new): 'package b\n\ndeny contains "x" if true\n'}
    )
    assert sorted(policy.packages) == ["a", "b"]
    assert str(new) in policy.files
    # a path neither on disk nor given is still an error
    with pytest.raises(PolicyErrors) as raised:
        load_policy([tmp_path, tmp_path / "c.guard"], texts={str(new): "package b\n"})
    assert [e.code for e in raised.value.errors] == ["io_error"]
