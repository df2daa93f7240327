"""`subguard lsp` in a second process, driven over stdio by pygls's LanguageClient as an
editor drives it: capabilities, diagnostics (codes, ranges, clearing, other files),
hover, completion, and text that must not take it down."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from subguard.engine.schema import FIELD_DOCS, RECORDS

from .editor import Editor, session, uri_of

ROOT = Path(__file__).resolve().parents[2]

TYPO = """package p

import input.sql.statements

deny contains "no drops" if {
    some s in statements
    s.kinds == "drop"
}
"""


def span(diagnostic: types.Diagnostic) -> tuple[int, int, int, int]:
    r = diagnostic.range
    return r.start.line, r.start.character, r.end.line, r.end.character


def test_initialize_advertises_sync_hover_and_completion_after_a_dot() -> None:
    async def scenario(editor: Editor) -> None:
        capabilities = editor.capabilities
        assert capabilities is not None
        assert editor.server_info is not None and editor.server_info.name == "subguard"
        assert capabilities.hover_provider
        assert capabilities.completion_provider is not None
        assert list(capabilities.completion_provider.trigger_characters or ()) == ["."]
        sync = capabilities.text_document_sync
        assert isinstance(sync, types.TextDocumentSyncOptions)
        assert sync.open_close and sync.change == types.TextDocumentSyncKind.Incremental

    session(None, scenario)


def test_diagnostics_carry_codes_and_ranges_and_clear_when_fixed(tmp_path: Path) -> None:
    document = tmp_path / "p.guard"
    document.write_text(TYPO)

    async def scenario(editor: Editor) -> None:
        uri = editor.open(document)
        [typo] = await editor.published(uri)
        assert (typo.code, typo.source, typo.severity) == (
            "unknown_field",
            "subguard",
            types.DiagnosticSeverity.Error,
        )
        assert span(typo) == (6, 6, 6, 11)  # `kinds`
        assert "did you mean `kind`" in typo.message

        editor.replace(uri, TYPO.replace("s.kinds", "s.kind"))
        assert await editor.published(uri, lambda d: not d) == []

        editor.replace(uri, TYPO.replace('s.kinds == "drop"', "s.kind =="))
        [broken] = await editor.published(uri, bool)
        assert broken.code == "parse_error"
        assert span(broken) == (7, 0, 7, 1)  # the `}` it stopped at

        editor.replace(uri, TYPO.replace("    s.kinds", "    y := 1\n    s.kind"))
        [unused] = await editor.published(uri, bool)
        assert (unused.code, span(unused)) == ("unused_var", (6, 4, 6, 5))

        editor.replace(uri, TYPO.replace("s.kinds", "s.kind"))
        assert await editor.published(uri, lambda d: not d) == []

    session(tmp_path, scenario)


def test_ranges_count_utf16_units_and_utf32_when_negotiated(tmp_path: Path) -> None:
    text = 'package p\n\ndeny contains "😀é" if input.sql.statements[0].kinds == "drop"\n'
    (tmp_path / "p.guard").write_text(text)
    column = text.split("\n")[2].index("kinds")  # in code points

    async def utf16(editor: Editor) -> None:
        [diagnostic] = await editor.published(editor.open(tmp_path / "p.guard"))
        assert span(diagnostic) == (2, column + 1, 2, column + 6)  # the emoji is two units

    async def utf32(editor: Editor) -> None:
        [diagnostic] = await editor.published(editor.open(tmp_path / "p.guard"))
        assert span(diagnostic) == (2, column, 2, column + 5)

    session(tmp_path, utf16)
    session(tmp_path, utf32, encodings=[types.PositionEncodingKind.Utf32])


def test_incremental_edits_in_utf16_units_are_applied_before_compiling(tmp_path: Path) -> None:
    text = 'package p\n\n# “😀”\ndeny contains "😀" if input.sql.statements[0].kind == "drop"\n'
    document = tmp_path / "p.guard"
    document.write_text(text)
    line = text.split("\n")[3]
    kind = line.index("kind") + 1  # the emoji before it is two UTF-16 units

    async def scenario(editor: Editor) -> None:
        uri = editor.open(document)
        assert await editor.published(uri) == []
        editor.edit(uri, (3, kind + 4), (3, kind + 4), "z")  # kind → kindz
        [typo] = await editor.published(uri, bool)
        assert (typo.code, span(typo)) == ("unknown_field", (3, kind, 3, kind + 5))
        editor.edit(uri, (3, kind + 4), (3, kind + 5), "")
        assert await editor.published(uri, lambda d: not d) == []
        # a save compiles too (the file on disk is what the buffer holds)
        document.write_text(text.replace("kind", "knd"))
        editor.replace(uri, text.replace("kind", "knd"))
        editor.save(uri)
        [saved] = await editor.published(uri, bool)
        assert saved.code == "unknown_field"

    session(tmp_path, scenario)


def test_other_files_of_the_policy_resolve_and_their_buffers_count(tmp_path: Path) -> None:
    # sql/ and shell/ hold the policy, their parent no file of its own: `--root` joins them
    policy = tmp_path / "my policy é"  # URIs quote the space and the accent
    (policy / "shell").mkdir(parents=True)
    (policy / "sql").mkdir()
    lib = policy / "shell" / "lib.guard"
    lib.write_text('package lib\n\nis_admin(id) if id in {"root"}\n')
    main = policy / "sql" / "main.guard"
    main.write_text(
        'package main\n\ndeny contains "admin" if data.lib.is_admin(input.subject.id)\n'
    )

    async def scenario(editor: Editor) -> None:
        main_uri = editor.open(main)
        assert await editor.published(main_uri) == []  # data.lib.is_admin is in shell/lib.guard

        # an unsaved edit of lib renames the function and breaks a field: both files say so
        lib_uri = editor.open(lib)
        await editor.published(lib_uri, lambda d: not d)
        editor.replace(
            lib_uri, 'package lib\n\nis_root(id) if id in {"root"}\nx := input.subject.idd\n'
        )
        [call] = await editor.published(main_uri, bool)
        assert call.code == "unknown_function" and span(call) == (2, 25, 2, 60)
        [field] = await editor.published(lib_uri, bool)
        assert field.code == "unknown_field" and span(field) == (3, 19, 3, 22)

        editor.replace(lib_uri, 'package lib\n\nis_admin(id) if id in {"root"}\n')
        assert await editor.published(main_uri, lambda d: not d) == []
        assert await editor.published(lib_uri, lambda d: not d) == []

    session(tmp_path, scenario, "--root", str(policy))


def test_the_repository_packs_open_clean_rules_and_tests() -> None:
    async def scenario(editor: Editor) -> None:
        for name in (
            "rules/sql/destructive.guard",
            "rules/sql/destructive_test.guard",
            "rules/shell/posture.guard",
        ):
            assert await editor.published(editor.open(ROOT / name)) == [], name

    session(ROOT, scenario)


def test_hover_shows_type_and_doc_and_completion_lists_fields(tmp_path: Path) -> None:
    text = TYPO.replace("s.kinds", "s.kind") + "\nallow if input.sql.\n"
    document = tmp_path / "p.guard"

    async def scenario(editor: Editor) -> None:
        uri = editor.open(document, text)
        hover = await editor.hover(uri, 6, 7)  # s.k|ind
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        assert hover.contents.kind == types.MarkupKind.Markdown
        assert "`s.kind`: `string`" in hover.contents.value
        assert FIELD_DOCS["Statement.kind"] in hover.contents.value
        assert hover.range == types.Range(types.Position(6, 6), types.Position(6, 10))

        hover = await editor.hover(uri, 2, 20)  # import input.sql.statements
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        assert "`input.sql.statements`: `array<Statement>`" in hover.contents.value
        assert await editor.hover(uri, 0, 2) is None  # `package`

        items = await editor.complete(uri, 10, len("allow if input.sql."))
        assert [(i.label, i.detail, i.kind) for i in items] == [
            (name, type_, types.CompletionItemKind.Field) for name, type_ in RECORDS["Sql"].items()
        ]
        documentation = items[1].documentation
        assert isinstance(documentation, types.MarkupContent)
        assert documentation.value == FIELD_DOCS["Sql.statements"]
        labels = [i.label for i in await editor.complete(uri, 6, len("    s."))]
        assert labels == list(RECORDS["Statement"])
        assert await editor.complete(uri, 5, 4) == []

    session(tmp_path, scenario)


def test_bad_text_gives_diagnostics_and_the_server_stays_up(tmp_path: Path) -> None:
    texts = {
        "garbage.guard": "\x00\x01 garbage ((( {{ ]]",
        "nested.guard": "package p\nallow if " + "[" * 20000 + "]" * 20000 + "\n",
        "parens.guard": "package p\nallow if " + "(" * 5000 + "1" + ")" * 5000 + "\n",
        "long.guard": "package p\n" + "x := 1 " * 50000 + "\n",
        "empty.guard": "",
    }

    async def scenario(editor: Editor) -> None:
        for name, text in texts.items():
            uri = editor.open(tmp_path / name, text)
            diagnostics = await editor.published(uri)
            assert diagnostics, name
            assert all(
                d.code not in (None, "internal_error") and d.source == "subguard"
                for d in diagnostics
            ), name
            assert all(
                0 <= d.range.start.line <= d.range.end.line <= text.count("\n") for d in diagnostics
            ), name
        # a hover far outside the text, then a completion: answered, not a crash
        uri = uri_of(tmp_path / "nested.guard")
        assert await editor.hover(uri, 500, 500) is None
        assert await editor.complete(uri, 1, 30000) == []
        good = editor.open(
            tmp_path / "good.guard",
            'package good\n\ndeny contains "x" if input.subject.id == "x"\n',
        )
        # a file of another language the client sends is left alone; a buffer with no
        # file compiles alone
        notes = editor.open(tmp_path / "notes.txt", "not ( a policy", language="plaintext")
        untitled = editor.open("untitled:Untitled-1", "package u\nallow if input.subject.idd\n")
        assert await editor.published(good) == []
        [typo] = await editor.published(untitled)
        assert (typo.code, span(typo)) == ("unknown_field", (1, 23, 1, 26))
        editor.replace(good, "package good\n")  # a compile queued after any for notes.txt
        assert await editor.published(good) == []
        assert notes not in editor.diagnostics
        # closing a document takes its diagnostics away
        garbage = uri_of(tmp_path / "garbage.guard")
        editor.close(garbage)
        assert await editor.published(garbage, lambda d: not d) == []

    session(tmp_path, scenario)
