"""Read shell text with tree-sitter-bash into simple commands: their words (normalised by
`_words`), assignments, redirections and what feeds their standard input.

Every command the text would start is found wherever it sits: lists, pipelines,
subshells, groups, loops, conditions, functions, `$(…)`, backticks, process
substitutions, heredoc bodies and their pipelines. Any ERROR or MISSING node makes the
text malformed: tree-sitter recovers by hiding text inside such nodes (a command after a
heredoc, for example), so its facts are then best effort and `error` says where.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import attrs
import tree_sitter
import tree_sitter_bash

from subguard.command._arith import hazard, nested_subshells
from subguard.command._words import Word, normalise_word

__all__ = ["Redirect", "Script", "Simple", "Stdin", "read_script"]

#: Syntax nested deeper than this is not read; the text is then malformed.
MAX_TREE_DEPTH = 200
#: Every command's words are normalised whole, substitutions included, so nesting makes
#: the work the text's length times its depth: past this many bytes per byte of text
#: (plus a floor) the rest is not read and the text is malformed. Bounds the cost of one
#: request to a constant times its length.
WORK_PER_BYTE = 16
WORK_FLOOR = 64 * 1024
#: Words (and other parts of simple commands) one text may hold: past this the text is
#: not read further and is malformed. Counted from the syntax tree before any word is
#: normalised, so a 100,000-argument command is refused at the cost of its parse.
MAX_WORDS = 20_000

_LANGUAGE = tree_sitter.Language(tree_sitter_bash.language())
_local = threading.local()


def _parser() -> tree_sitter.Parser:
    parser: tree_sitter.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = tree_sitter.Parser(_LANGUAGE)
    return parser


@attrs.frozen
class Redirect:
    """`> /etc/passwd`: the operator and its target (None for a heredoc)."""

    op: str
    target: Word | None
    #: The file descriptor written before the operator (`2>`), or None.
    fd: str | None = None


@attrs.define
class Stdin:
    """What feeds a command's standard input."""

    #: heredoc, herestring, pipe or file
    kind: str
    #: The text, when the analysis knows it (a heredoc, a herestring, a pipe from a
    #: producer whose output is literal).
    text: str | None = None
    #: The path read (`< file`), or the producing command of a pipe.
    path: str | None = None
    producer: Simple | None = None


@attrs.define
class Simple:
    """One simple command."""

    words: list[Word]
    #: Byte spans of `words` in the source (brace-expanded words share one span).
    spans: list[tuple[int, int]]
    assignments: list[tuple[str, Word, tuple[int, int]]]
    redirects: list[Redirect]
    stdin: Stdin | None = None
    #: Other simple commands of the same pipeline that this one feeds.
    feeds: list[Simple] = attrs.field(factory=list)


@attrs.define
class Script:
    """A shell text, read."""

    commands: list[Simple]
    #: Why the text is malformed (with its line and column), or None.
    error: str | None
    #: Bodies of backtick substitutions with escapes (`` `a \`b\`` ``): read again as
    #: scripts, since backslashes there quote inner backticks.
    nested: list[str] = attrs.field(factory=list)
    #: Part of the text was left unread (a work or word limit): its commands are missing.
    unread: bool = False


def read_script(text: str) -> Script:
    """Read `text`; never raises."""
    source = text.encode("utf-8", "surrogatepass")
    tree = _parser().parse(source)
    reader = _Reader(source)
    root = tree.root_node
    if root.has_error:
        reader.error = _first_error(root)
    reader.visit(root, None, [], 0)
    if reader.error is None:
        reader.error = hazard(root, source)
    return Script(reader.commands, reader.error, reader.nested, reader.unread)


def _first_error(root: Any) -> str:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line, col = node.start_point
            what = f"missing `{node.type}`" if node.is_missing else "syntax error"
            return f"{what} at line {line + 1}, column {col + 1}"
        if node.has_error:
            stack.extend(reversed(node.children))
    return "syntax error"


# Argument-like children of a `command` node.
_NOT_WORDS = frozenset(
    ("command_name", "variable_assignment", "file_redirect", "heredoc_redirect",
     "herestring_redirect", "comment", "subscript")
)  # fmt: skip
_WRITE_OPS = frozenset((">", ">>", "&>", "&>>", ">|", "<>", ">&", "&>|"))


class _Reader:
    def __init__(self, source: bytes) -> None:
        self.source = source
        self.commands: list[Simple] = []
        self.error: str | None = None
        self.nested: list[str] = []
        self.work_left = WORK_PER_BYTE * len(source) + WORK_FLOOR
        self.words_left = MAX_WORDS
        self.unread = False

    def text(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "surrogateescape")

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def visit(
        self, node: Any, stdin: Stdin | None, redirects: list[Redirect], depth: int
    ) -> list[Simple]:
        """Read `node`; returns the simple commands found directly in it (for pipelines)."""
        if depth > MAX_TREE_DEPTH:
            self.fail("command is nested too deeply")
            return []
        kind = node.type
        if kind == "ERROR" or node.is_missing:
            self.fail(_first_error(node))
        if kind in ("command", "declaration_command", "unset_command"):
            return [self.command(node, stdin, redirects, depth)]
        if kind == "pipeline":
            return self.pipeline(node, stdin, redirects, depth)
        if kind == "redirected_statement":
            return self.redirected(node, stdin, redirects, depth)
        if kind in ("heredoc_body", "heredoc_start", "heredoc_end", "comment"):
            # a heredoc body's substitutions still run
            if kind == "heredoc_body":
                for child in node.named_children:
                    self.visit(child, None, [], depth + 1)
            return []
        subshells = nested_subshells(node, self.source)
        if subshells is not None:
            # `((…))`: arithmetic to bash, nested subshells to a POSIX shell (see _arith)
            self.nested.append(subshells)
        if kind == "command_substitution":
            body = self.text(node)
            if body.startswith("`") and "\\" in body:
                inner = body[1:-1] if body.endswith("`") else body[1:]
                self.nested.append(
                    inner.replace("\\\\", "\x00")
                    .replace("\\`", "`")
                    .replace("\\$", "$")
                    .replace("\x00", "\\")
                )
        found: list[Simple] = []
        inner_stdin = (
            stdin if kind not in ("command_substitution", "process_substitution") else None
        )
        inner_redirects = redirects if inner_stdin is stdin else []
        for child in node.children:
            found.extend(self.visit(child, inner_stdin, inner_redirects, depth + 1))
        return found

    def pipeline(
        self, node: Any, stdin: Stdin | None, redirects: list[Redirect], depth: int
    ) -> list[Simple]:
        stages = [c for c in node.named_children if c.type != "comment"]
        found: list[Simple] = []
        feed = stdin
        previous: list[Simple] = []
        for stage in stages:
            got = self.visit(stage, feed, redirects, depth + 1)
            for producer in previous:
                producer.feeds.extend(got)
            found.extend(got)
            previous = got
            last = got[-1] if got else None
            feed = Stdin("pipe", producer=last) if last is not None else Stdin("pipe")
        return found

    def redirected(
        self, node: Any, stdin: Stdin | None, redirects: list[Redirect], depth: int
    ) -> list[Simple]:
        body = node.child_by_field_name("body")
        own: list[Redirect] = []
        feed = stdin
        after: list[Any] = []  # a pipeline or list written after a heredoc's start
        for child in node.named_children:
            if child is body or child == body:
                continue
            redirect, fed, rest = self.redirect(child, depth)
            if redirect is not None:
                own.append(redirect)
            if fed is not None:
                feed = fed
            after.extend(rest)
        if body is not None:
            found = self.visit(body, feed, redirects + own, depth + 1)
        else:
            # `> /etc/passwd` alone: the shell opens (and truncates) the file as `: >` would
            bare = Simple(
                [Word(":")], [(node.start_byte, node.start_byte)], [], redirects + own, feed
            )
            self.commands.append(bare)
            found = [bare]
        extra = [r[1] for r in after if isinstance(r, tuple)]
        after = [r for r in after if not isinstance(r, tuple)]
        if extra and body is not None and body.type == "command" and found:
            for node in extra:
                for word in normalise_word([node], self.source):
                    found[0].words.append(word)
                    found[0].spans.append((node.start_byte, node.end_byte))
        for rest in after:
            # `cat <<E | bash`: the pipeline continues after the heredoc's start line
            if rest.type == "pipeline":
                producer = found[-1] if found else None
                pipe = Stdin("pipe", producer=producer)
                stages = [c for c in rest.named_children if c.type != "comment"]
                previous = found[-1:] if found else []
                for stage in stages:
                    got = self.visit(stage, pipe, [], depth + 1)
                    for p in previous:
                        p.feeds.extend(got)
                    found.extend(got)
                    previous = got
                    pipe = Stdin("pipe", producer=got[-1] if got else None)
            else:
                found.extend(self.visit(rest, None, [], depth + 1))
        return found

    def redirect(self, node: Any, depth: int) -> tuple[Redirect | None, Stdin | None, list[Any]]:
        """One redirection: (the redirect, the stdin it gives, syntax after it)."""
        kind = node.type
        fd_node = node.child_by_field_name("descriptor")
        fd = self.text(fd_node) if fd_node is not None else None
        if kind == "heredoc_redirect":
            body = next((c for c in node.named_children if c.type == "heredoc_body"), None)
            start = next((c for c in node.named_children if c.type == "heredoc_start"), None)
            end = next((c for c in node.named_children if c.type == "heredoc_end"), None)
            # tree-sitter misreads some bodies (lines starting with a backslash become
            # words of the redirect): the body is what lies between the start line and
            # the end delimiter, and only syntax on the start line follows the heredoc
            first_line = self.source.find(b"\n", start.end_byte) if start is not None else -1
            rest = [
                c
                for c in node.named_children
                if c.type not in ("heredoc_body", "heredoc_start", "heredoc_end")
                and (first_line < 0 or c.start_byte < first_line)
            ]
            if first_line >= 0 and end is not None:
                text = self.source[first_line + 1 : end.start_byte].decode(
                    "utf-8", "surrogateescape"
                )
            else:
                text = self.text(body) if body is not None else ""
            if body is not None:
                self.visit(body, None, [], depth + 1)
            quoted = start is not None and any(q in self.text(start) for q in "'\"\\")
            dynamic = (
                body is not None
                and not quoted
                and any(c.type != "heredoc_content" for c in body.named_children)
            )
            if node.children and self.text(node.children[0]) == "<<-":
                text = "\n".join(line.lstrip("\t") for line in text.split("\n"))
            return Redirect("<<", None, fd), Stdin("heredoc", text=None if dynamic else text), rest
        if kind == "herestring_redirect":
            values = [c for c in node.named_children if c.type != "file_descriptor"]
            for v in values:
                self.visit(v, None, [], depth + 1)
            words = normalise_word(values, self.source) if values else [Word("")]
            word = words[0]
            said: str | None = None if word.dynamic else " ".join(w.text for w in words) + "\n"
            return Redirect("<<<", word, fd), Stdin("herestring", text=said), []
        if kind == "file_redirect":
            op = next((self.text(c) for c in node.children if not c.is_named), ">")
            targets = [c for c in node.named_children if c.type != "file_descriptor"]
            for t in targets:
                self.visit(t, None, [], depth + 1)
            # `cmd > out arg`: words after the target are the command's arguments
            extra = [t for t in targets[1:] if t.start_byte > targets[0].end_byte]
            targets = [t for t in targets if t not in extra]
            target: Word | None = normalise_word(targets, self.source)[0] if targets else None
            fed = Stdin("file", path=target.text if target else None) if op in ("<", "<>") else None
            return Redirect(op, target, fd), fed, [("word", e) for e in extra]
        return None, None, [node]

    def command(
        self, node: Any, stdin: Stdin | None, redirects: list[Redirect], depth: int
    ) -> Simple:
        self.work_left -= node.end_byte - node.start_byte
        self.words_left -= node.child_count
        if self.work_left < 0 or self.words_left < 0:
            self.unread = True
            self.fail("command is too complex to read")
            return Simple([], [], [], list(redirects), stdin)
        position = len(self.commands)  # before the commands of its substitutions
        own = list(redirects)
        feed = stdin
        assignments: list[tuple[str, Word, tuple[int, int]]] = []
        groups: list[list[Any]] = []
        sources: dict[int, Simple] = {}
        for child in node.children:
            kind = child.type
            if kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                redirect, fed, rest = self.redirect(child, depth)
                if redirect is not None:
                    own.append(redirect)
                if fed is not None:
                    feed = fed
                for r in rest:
                    if isinstance(r, tuple):
                        groups.append([r[1]])
                    else:
                        self.visit(r, None, [], depth + 1)
                continue
            if kind == "variable_assignment":
                name_node = child.child_by_field_name("name")
                value = child.child_by_field_name("value")
                self.visit(child, None, [], depth + 1)
                name = self.text(name_node) if name_node is not None else ""
                word = normalise_word([value], self.source)[0] if value is not None else Word("")
                span = (
                    (value.start_byte, value.end_byte)
                    if value is not None
                    else (child.end_byte, child.end_byte)
                )
                assignments.append((name, word, span))
                continue
            if kind == "comment":
                continue
            # substitutions inside the word run too
            inner = self.visit(child, None, [], depth + 1)
            target = (
                child.named_children[0]
                if kind == "command_name" and child.named_child_count
                else child
            )
            if target.type == "process_substitution" and inner:
                sources[target.start_byte] = inner[-1]
            if groups and groups[-1][-1].end_byte == child.start_byte:
                groups[-1].append(target)
            else:
                groups.append([target])
        words: list[Word] = []
        spans: list[tuple[int, int]] = []
        for group in groups:
            for word in normalise_word(group, self.source):
                if len(group) == 1 and group[0].start_byte in sources:
                    word = attrs.evolve(word, source=sources[group[0].start_byte])
                words.append(word)
                spans.append((group[0].start_byte, group[-1].end_byte))
        simple = Simple(words, spans, assignments, own, feed)
        self.commands.insert(position, simple)
        return simple


def walk_errors(text: str) -> Iterator[str]:  # pragma: no cover - debugging aid
    script = read_script(text)
    if script.error:
        yield script.error
