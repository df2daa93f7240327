"""The language server behind `subguard lsp`: LSP over standard input and output (pygls),
publishing the compiler's errors as diagnostics and answering hover and completion from
the input document's schema. What it says is computed by `cli._lsp_analysis`; this
module speaks the protocol and decides when to compile.

Compiling a policy directory takes a tenth of a second or more, so a change waits a
moment (`DEBOUNCE_SECONDS`) for the next keystroke, and compiling runs off the event loop
(one compile at a time) so hover and completion answer meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from subguard.cli import _lsp_analysis as analysis
from subguard.engine.sources import is_test_file

__all__ = ["DEBOUNCE_SECONDS", "SubguardServer", "build_server"]

#: How long a change waits for the next one before the policy is compiled again.
DEBOUNCE_SECONDS: Final = 0.2

#: The name diagnostics give as their source.
SOURCE: Final = "subguard"


class SubguardServer(LanguageServer):
    """The server: the open policy documents, and which files carry diagnostics."""

    def __init__(self, roots: Sequence[Path], version: str) -> None:
        super().__init__("subguard", version)
        #: Policy directories given on the command line (`--root`).
        self.roots = tuple(roots)
        #: Files that carry diagnostics now, by the compile group that published them.
        self.published: dict[tuple[str, bool], set[str]] = {}
        #: The latest compile asked of each group: an older one does not publish.
        self.generation: dict[tuple[str, bool], int] = {}
        self.tasks: set[asyncio.Future[None]] = set()
        self.compiling = asyncio.Lock()

    # ── where a document's policy is ─────────────────────────────────────────────────

    def folders(self) -> list[Path]:
        paths = [to_fs_path(f.uri) for f in self.workspace.folders.values()]
        if self.workspace.root_path:
            paths.append(self.workspace.root_path)
        return [Path(p) for p in paths if p]

    def group(self, document: TextDocument) -> tuple[str, bool] | None:
        """The compile a document belongs to: its policy directory, and whether it is a
        test file (tests compile with their directory's tests); None when it has no file."""
        path = _policy_path(document)
        if path is None:
            return None
        root = analysis.policy_root(path, self.roots, self.folders())
        return str(root), is_test_file(path)

    # ── diagnostics ──────────────────────────────────────────────────────────────────

    def schedule(self, document: TextDocument, delay: float) -> None:
        """Compile the document's policy after `delay` seconds, and the policies of the
        other open documents of its directory (an edit of a rule changes its tests). A
        change that comes meanwhile supersedes the compile: only the latest publishes."""
        if not _is_policy(document):
            return  # another language the client sent by its configuration: not ours
        group = self.group(document)
        if group is None:
            self.publish_alone(document)
            return
        groups = {group}
        for other in list(self.workspace.text_documents.values()):
            other_group = self.group(other)
            if other_group is not None and other_group[0] == group[0] and _is_policy(other):
                groups.add(other_group)
        for key in groups:
            self.generation[key] = generation = self.generation.get(key, 0) + 1
            task = asyncio.ensure_future(self.refresh(key, document.uri, delay, generation))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def current(self, group: tuple[str, bool], generation: int) -> bool:
        return self.generation.get(group) == generation

    async def refresh(
        self, group: tuple[str, bool], uri: str, delay: float, generation: int
    ) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self.current(group, generation):
            return
        async with self.compiling:
            if not self.current(group, generation):
                return
            documents = [
                d for d in list(self.workspace.text_documents.values())
                if _is_policy(d) and self.group(d) == group
            ]  # fmt: skip
            if not documents:
                return
            anchor = next((d for d in documents if d.uri == uri), documents[0])
            path = _policy_path(anchor)
            assert path is not None
            open_texts = {
                str(p): d.source for d in list(self.workspace.text_documents.values())
                if _is_policy(d) and (p := _policy_path(d)) is not None
            }  # fmt: skip
            named = [p for d in documents if (p := _policy_path(d)) is not None]
            versions = {str(_policy_path(d)): d.version for d in documents}
            found = await asyncio.to_thread(
                analysis.diagnose,
                path,
                anchor.source,
                open_texts=open_texts,
                roots=self.roots,
                folders=self.folders(),
                named=named,
                parse_cache=True,
            )
        if not self.current(group, generation):
            return  # the text changed while it compiled: the newer compile publishes
        for document in documents:
            found.setdefault(str(_policy_path(document)), [])
        before = self.published.get(group, set())
        for stale in before - found.keys():
            found[stale] = []
        self.published[group] = {p for p, problems in found.items() if problems}
        open_now = {
            str(p) for d in list(self.workspace.text_documents.values()) if (p := _policy_path(d))
        }
        for file, problems in found.items():
            if file in open_now or os.path.isfile(file):  # not a buffer closed meanwhile
                self.publish(file, problems, versions.get(file))

    def publish_alone(self, document: TextDocument) -> None:
        found = analysis.diagnose(None, document.source)
        problems = [p for ps in found.values() for p in ps]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=document.uri,
                diagnostics=[self.diagnostic(p, document.lines) for p in problems],
                version=document.version,
            )
        )

    def open_document(self, file: str) -> TextDocument | None:
        documents: list[TextDocument] = list(self.workspace.text_documents.values())
        return next((d for d in documents if str(_policy_path(d)) == file), None)

    def publish(self, file: str, problems: list[analysis.Problem], version: int | None) -> None:
        document = self.open_document(file)
        # an open file's diagnostics go to the URI the client spelled it with
        uri = document.uri if document is not None else from_fs_path(file) or file
        lines = self.lines_of(document, problems)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                diagnostics=[self.diagnostic(p, lines) for p in problems],
                version=version,
            )
        )

    def lines_of(
        self, document: TextDocument | None, problems: list[analysis.Problem]
    ) -> list[str]:
        """The file's lines as the client has them (for its position encoding)."""
        if not problems:
            return []
        if document is not None:
            return list(document.lines)
        try:
            return (
                Path(problems[0].path)
                .read_text(encoding="utf-8", errors="replace")
                .splitlines(keepends=True)
            )
        except OSError:
            return []

    def diagnostic(self, problem: analysis.Problem, lines: Sequence[str]) -> types.Diagnostic:
        return types.Diagnostic(
            range=self.client_range(problem.span, lines),
            message=problem.message,
            severity=types.DiagnosticSeverity.Error,
            code=problem.code,
            source=SOURCE,
        )

    def client_range(self, span: analysis.Span, lines: Sequence[str]) -> types.Range:
        codec = self.workspace.position_codec
        return codec.range_to_client_units(
            list(lines),
            ServerTextRange(
                ServerTextPosition(span.line, span.char),
                ServerTextPosition(span.end_line, span.end_char),
            ),
        )

    def clear(self, uri: str) -> None:
        """A closed document's diagnostics go with it (the policy keeps its errors on disk
        until the next compile of its directory)."""
        for files in self.published.values():
            path = to_fs_path(uri)
            if path is not None:
                files.discard(os.path.abspath(path))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


def _is_policy(document: TextDocument) -> bool:
    """A `.guard` file, or a buffer without a file that the client calls `subguard`."""
    if document.uri.startswith("file:"):
        return document.uri.endswith(".guard")
    return document.language_id == "subguard"


def _policy_path(document: TextDocument) -> Path | None:
    if not document.uri.startswith("file:"):
        return None
    path = to_fs_path(document.uri)
    return Path(os.path.abspath(path)) if path else None


def _server_position(document: TextDocument, position: types.Position) -> tuple[int, int]:
    at = document.position_codec.position_from_client_units(list(document.lines), position)
    return at.line, at.character


def build_server(roots: Sequence[Path] = (), version: str = "0") -> SubguardServer:
    """The language server, its features registered; `start_io()` serves it."""
    server = SubguardServer(roots, version)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SubguardServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(ls.workspace.get_text_document(params.text_document.uri), 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SubguardServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(ls.workspace.get_text_document(params.text_document.uri), DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SubguardServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.schedule(ls.workspace.get_text_document(params.text_document.uri), 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SubguardServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.clear(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: SubguardServer, params: types.HoverParams) -> types.Hover | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        line, char = _server_position(document, params.position)
        found = analysis.hover(document.source, line, char)
        if found is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=found.markdown()),
            range=ls.client_range(found.span, document.lines),
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["."]),
    )
    def completion(ls: SubguardServer, params: types.CompletionParams) -> types.CompletionList:
        document = ls.workspace.get_text_document(params.text_document.uri)
        line, char = _server_position(document, params.position)
        items = [
            types.CompletionItem(
                label=field.name,
                kind=types.CompletionItemKind.Field,
                detail=field.type,
                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=field.doc),
                sort_text=f"{index:04d}",
            )
            for index, field in enumerate(analysis.complete(document.source, line, char))
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    return server
