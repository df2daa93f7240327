"""An editor for the tests: pygls's LanguageClient driving `python -m subguard lsp` in a
second process over stdio, keeping the diagnostics the server publishes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

T = TypeVar("T")

#: The longest any one wait may take: a hung server fails the test instead of hanging it.
TIMEOUT = 20.0


def uri_of(path: Path) -> str:
    uri = from_fs_path(str(path))
    assert uri is not None
    return uri


class Editor:
    def __init__(self) -> None:
        self.client = LanguageClient("subguard-tests", "1")
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.changed = asyncio.Condition()
        self.versions: dict[str, int] = {}
        self.capabilities: types.ServerCapabilities | None = None
        self.server_info: types.ServerInfo | None = None

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def published(params: types.PublishDiagnosticsParams) -> None:
            async with self.changed:
                self.diagnostics[params.uri] = list(params.diagnostics)
                self.changed.notify_all()

    async def start(self, folder: Path | None, *args: str, encodings: Sequence[str] = ()) -> None:
        await self.client.start_io(sys.executable, "-m", "subguard", "lsp", *args)
        general = (
            types.GeneralClientCapabilities(position_encodings=list(encodings))
            if encodings
            else None
        )
        result = await asyncio.wait_for(
            self.client.initialize_async(
                types.InitializeParams(
                    capabilities=types.ClientCapabilities(general=general),
                    root_uri=uri_of(folder) if folder else None,
                    workspace_folders=[types.WorkspaceFolder(uri_of(folder), folder.name)]
                    if folder
                    else None,
                )
            ),
            TIMEOUT,
        )
        self.capabilities = result.capabilities
        self.server_info = result.server_info
        self.client.initialized(types.InitializedParams())

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), TIMEOUT)
            self.client.exit(None)
            await asyncio.wait_for(self.client.stop(), TIMEOUT)
        finally:
            server = self.client._server
            if server is not None and server.returncode is None:
                server.kill()

    def open(self, path: Path | str, text: str | None = None, language: str = "subguard") -> str:
        """Open a file (its text, or `text` as an unsaved buffer), or a buffer with no
        file when `path` is a URI."""
        uri = path if isinstance(path, str) else uri_of(path)
        if text is None:
            assert isinstance(path, Path)
            text = path.read_text()
        self.versions[uri] = 1
        self.diagnostics.pop(uri, None)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language, 1, text))
        )
        return uri

    def close(self, uri: str) -> None:
        self.diagnostics.pop(uri, None)
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    def replace(self, uri: str, text: str) -> None:
        """The whole text replaced, as an editor sends a change."""
        self.versions[uri] += 1
        self.diagnostics.pop(uri, None)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(self.versions[uri], uri),
                [types.TextDocumentContentChangeWholeDocument(text)],
            )
        )

    def edit(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        """An incremental change: `text` replaces the range (client units) from `start`
        to `end`."""
        self.versions[uri] += 1
        self.diagnostics.pop(uri, None)
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(*start), types.Position(*end)), text=text
        )
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(self.versions[uri], uri), [change]
            )
        )

    def save(self, uri: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    async def published(
        self, uri: str, until: Callable[[list[types.Diagnostic]], bool] = lambda _: True
    ) -> list[types.Diagnostic]:
        """The diagnostics of `uri` once the server has published some that satisfy
        `until`."""

        async def wait() -> list[types.Diagnostic]:
            async with self.changed:
                while uri not in self.diagnostics or not until(self.diagnostics[uri]):
                    await self.changed.wait()
                return self.diagnostics[uri]

        return await asyncio.wait_for(wait(), TIMEOUT)

    async def hover(self, uri: str, line: int, char: int) -> types.Hover | None:
        return await asyncio.wait_for(
            self.client.text_document_hover_async(
                types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(line, char))
            ),
            TIMEOUT,
        )

    async def complete(self, uri: str, line: int, char: int) -> list[types.CompletionItem]:
        result = await asyncio.wait_for(
            self.client.text_document_completion_async(
                types.CompletionParams(
                    types.TextDocumentIdentifier(uri), types.Position(line, char)
                )
            ),
            TIMEOUT,
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.CompletionList) else result)


def session(
    folder: Path | None,
    scenario: Callable[[Editor], Awaitable[T]],
    *args: str,
    encodings: Sequence[str] = (),
) -> T:
    """Run `scenario` against a fresh server (started with `args`), then shut it down."""

    async def main() -> Any:
        editor = Editor()
        await editor.start(folder, *args, encodings=encodings)
        try:
            return await scenario(editor)
        finally:
            await editor.stop()

    return asyncio.run(main())
