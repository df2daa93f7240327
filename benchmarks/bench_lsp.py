"""The language server's latencies as an editor sees them, beside its peers in one run.

`subguard lsp` runs in a second process, driven over stdio by pygls's LanguageClient:

- start: spawn to the `initialize` answer, beside a one-shot `subguard check rules/`;
- a change to the next diagnostics, on a rule file and a test file of the bundled
  `rules/` tree (each edit alternately breaks and fixes a field), beside compiling the
  same policy in-process (`load_policy`) — the server's `DEBOUNCE_SECONDS` wait is part
  of what an editor sees and is shown apart;
- hover and completion round trips on the same document.

    python benchmarks/bench_lsp.py [--rounds 20] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from subguard.cli._lsp_server import DEBOUNCE_SECONDS
from subguard.engine import load_policy
from subguard.testing import test_builtins

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
RULE_FILE = RULES / "sql" / "destructive.guard"
TEST_FILE = RULES / "sql" / "destructive_test.guard"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


class Editor:
    def __init__(self) -> None:
        self.client = LanguageClient("bench", "1")
        self.published: asyncio.Queue[types.PublishDiagnosticsParams] = asyncio.Queue()

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def on_publish(params: types.PublishDiagnosticsParams) -> None:
            await self.published.put(params)

    async def start(self) -> float:
        started = time.perf_counter()
        await self.client.start_io(sys.executable, "-m", "subguard", "lsp")
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=from_fs_path(str(ROOT)),
                workspace_folders=[types.WorkspaceFolder(from_fs_path(str(ROOT)) or "", "repo")],
            )
        )
        elapsed = time.perf_counter() - started
        self.client.initialized(types.InitializedParams())
        return elapsed

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def diagnostics_for(self, uri: str, version: int | None = None) -> list[types.Diagnostic]:
        while True:
            params = await asyncio.wait_for(self.published.get(), 60)
            if params.uri == uri and (version is None or params.version == version):
                return list(params.diagnostics)


async def edits(editor: Editor, path: Path, rounds: int) -> list[float]:
    """Seconds from each didChange to the diagnostics of that version."""
    uri = from_fs_path(str(path)) or ""
    text = path.read_text()
    editor.client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "subguard", 1, text))
    )
    assert await editor.diagnostics_for(uri, 1) == []
    broken = text + "\nbroken if input.sql.statements[0].kinds\n"
    samples = []
    for version in range(2, rounds + 2):
        body = broken if version % 2 == 0 else text
        started = time.perf_counter()
        editor.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version, uri),
                [types.TextDocumentContentChangeWholeDocument(body)],
            )
        )
        found = await editor.diagnostics_for(uri, version)
        samples.append(time.perf_counter() - started)
        assert bool(found) == (body is broken), found
    editor.client.text_document_did_close(
        types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
    )
    return samples


async def requests(editor: Editor, count: int) -> tuple[list[float], list[float]]:
    uri = from_fs_path(str(RULE_FILE)) or ""
    text = RULE_FILE.read_text()
    editor.client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "subguard", 1, text))
    )
    lines = text.split("\n")
    line = next(i for i, content in enumerate(lines) if "s.kind" in content)
    char = lines[line].index("s.kind") + 3
    hovers, completions = [], []
    for _ in range(count):
        started = time.perf_counter()
        hover = await editor.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(line, char))
        )
        hovers.append(time.perf_counter() - started)
        assert hover is not None
        started = time.perf_counter()
        items: Any = await editor.client.text_document_completion_async(
            types.CompletionParams(
                types.TextDocumentIdentifier(uri), types.Position(line, char - 1)
            )
        )
        completions.append(time.perf_counter() - started)
        assert items is not None and len(items.items) > 20
    return hovers, completions


def peers(rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"check": [], "compile rules": [], "compile rules+tests": []}
    for _ in range(max(3, rounds // 4)):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "subguard", "check", str(RULES)], check=True, capture_output=True
        )
        out["check"].append(time.perf_counter() - started)
    for _ in range(rounds):
        started = time.perf_counter()
        load_policy(RULES)
        out["compile rules"].append(time.perf_counter() - started)
        started = time.perf_counter()
        load_policy(RULES, tests=True, builtins=test_builtins())
        out["compile rules+tests"].append(time.perf_counter() - started)
    return out


async def run(rounds: int, count: int) -> None:
    starts = []
    for _ in range(max(3, rounds // 4)):
        editor = Editor()
        starts.append(await editor.start())
        await editor.stop()
    editor = Editor()
    await editor.start()
    try:
        rule_edits = await edits(editor, RULE_FILE, rounds)
        test_edits = await edits(editor, TEST_FILE, rounds)
        hovers, completions = await requests(editor, count)
    finally:
        await editor.stop()
    peer = peers(rounds)

    print(
        f"Command: `python benchmarks/bench_lsp.py --rounds {rounds} --requests {count}` · Python "
        f"{platform.python_version()} · debounce {DEBOUNCE_SECONDS * 1000:.0f} ms\n"
    )
    print("| what | p50 ms | p90 ms | ÷ peer (p50) | peer |")
    print("|---|---:|---:|---:|---|")
    check_p50 = summary(peer["check"])[0]
    rules_p50 = summary(peer["compile rules"])[0]
    tests_p50 = summary(peer["compile rules+tests"])[0]
    rows = [
        ("server start + initialize", starts, check_p50, "`subguard check rules/` (a process)"),
        (
            "didChange → diagnostics, rule file",
            rule_edits,
            rules_p50,
            "load_policy(rules/) in-process",
        ),
        (
            "didChange → diagnostics, test file",
            test_edits,
            tests_p50,
            "load_policy(rules/, tests) in-process",
        ),
        ("hover", hovers, None, ""),
        ("completion", completions, None, ""),
    ]
    for name, samples, peer_p50, peer_name in rows:
        p50, p90 = summary(samples)
        ratio = f"{p50 / peer_p50:.2f}×" if peer_p50 else ""
        print(f"| {name} | {ms(p50)} | {ms(p90)} | {ratio} | {peer_name} |")
    for name in ("check", "compile rules", "compile rules+tests"):
        p50, p90 = summary(peer[name])
        print(f"| peer: {name} | {ms(p50)} | {ms(p90)} | 1.00× | |")
    print(
        f"\nA change's latency minus the debounce: rule file {ms(summary(rule_edits)[0] - DEBOUNCE_SECONDS)} ms, "
        f"test file {ms(summary(test_edits)[0] - DEBOUNCE_SECONDS)} ms (p50)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=20, help="edits per file (and compiles per peer)"
    )
    parser.add_argument("--requests", type=int, default=300, help="hover and completion requests")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.requests))


if __name__ == "__main__":
    main()
