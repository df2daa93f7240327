"""What the language server says about policy text — diagnostics, hover, completion —
computed from plain text, without the protocol library (`cli._lsp_server` speaks LSP).

Positions here are 0-based lines and characters counted in code points, ends exclusive;
the server converts them to the client's encoding.

Diagnostics are the compiler's own errors: the edited file is compiled together with the
other `.guard` files of its policy directory (so imports and references across packages
resolve), unsaved buffers standing in for their files. Hover and completion read the
text around the cursor, so they work while the file does not parse: `input.…` paths,
imports of them, and variables bound by `some … in`, `every … in` or `:=` to one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from subguard.engine import load_policy
from subguard.engine.policy import policy_from_sources
from subguard.engine.schema import FIELD_DOCS, INPUT_TYPE, RECORDS
from subguard.engine.sources import DATA_SCHEMA_FILE, is_test_file, read_policy_source
from subguard.errors import Location, PolicyError, PolicyErrors
from subguard.testing import test_builtins

__all__ = [
    "Field",
    "Hover",
    "Problem",
    "Span",
    "complete",
    "diagnose",
    "hover",
    "policy_paths",
    "policy_root",
]


@attrs.frozen
class Span:
    """A stretch of text: 0-based lines and characters (code points), end exclusive."""

    line: int
    char: int
    end_line: int
    end_char: int


@attrs.frozen
class Problem:
    """One compiler error, placed in the file it is about."""

    path: str
    code: str
    message: str
    span: Span


# ── diagnostics ──────────────────────────────────────────────────────────────────────


def _holds_policy(directory: Path) -> bool:
    try:
        return any(
            entry.name.endswith(".guard") or entry.name == DATA_SCHEMA_FILE
            for entry in os.scandir(directory)
        )
    except OSError:
        return False


def policy_root(document: Path, roots: Sequence[Path] = (), folders: Sequence[Path] = ()) -> Path:
    """The directory whose policy `document` belongs to: the innermost of `roots` holding
    it; otherwise its own directory and each parent that also holds policy files
    (`.guard` files or a `data.schema.json`), never above the workspace folder holding it
    (`rules/sql/x.guard` → `rules/`, when `rules/` has a `.guard` file of its own)."""
    document = Path(os.path.abspath(document))
    inside = [r for r in (Path(os.path.abspath(r)) for r in roots) if r in document.parents]
    if inside:
        return max(inside, key=lambda r: len(r.parts))
    limits = {Path(os.path.abspath(f)) for f in folders}
    root = document.parent
    while root not in limits and root.parent != root and _holds_policy(root.parent):
        root = root.parent
    return root


def policy_paths(
    document: Path, roots: Sequence[Path] = (), folders: Sequence[Path] = ()
) -> list[str]:
    """What to load with `document`: its policy directory (`policy_root`) when a root or a
    workspace folder holds the document; otherwise (a file opened on its own, perhaps in
    a home directory) only the policy files beside it, never a walk of what is below."""
    document = Path(os.path.abspath(document))
    root = policy_root(document, roots, folders)
    bounds = [Path(os.path.abspath(p)) for p in (*roots, *folders)]
    if any(bound == root or bound in root.parents for bound in bounds):
        return [str(root)]
    try:
        entries = sorted(os.scandir(document.parent), key=lambda e: e.name)
    except OSError:
        return []
    return [
        entry.path for entry in entries
        if entry.is_file()
        and (
            entry.name == DATA_SCHEMA_FILE
            or (entry.name.endswith(".guard") and (is_test_file(document) or not is_test_file(entry.name)))
        )
    ]  # fmt: skip


def diagnose(
    document: Path | None,
    text: str,
    *,
    open_texts: Mapping[str, str] | None = None,
    roots: Sequence[Path] = (),
    folders: Sequence[Path] = (),
    named: Iterable[Path] = (),
    parse_cache: bool = False,
) -> dict[str, list[Problem]]:
    """Every compiler error of the policy `document` belongs to, by file (absolute paths;
    the document itself always has an entry, empty when it is clean). `text` is the
    document's text, `open_texts` other unsaved buffers by absolute path, `named` other
    open documents to compile with it (a buffer not yet saved is found no other way).

    A test file (`*_test.guard`) is compiled with its directory's tests and the test
    builtins, as `subguard test` does; any other file as `subguard check` does. A
    document with no file (`document` None) is compiled alone. Never raises: a failure
    of the compiler itself is reported as `internal_error` on the document. With
    `parse_cache`, parsed sources are kept for the next compile (`engine.policycache`)."""
    key = os.path.abspath(document) if document is not None else "<buffer>"
    found: dict[str, list[Problem]] = {key: []}
    sources: dict[str, str] = {key: text}
    try:
        if document is None:
            policy_from_sources([(key, text)])
        else:
            tests = is_test_file(document)
            texts = {os.path.abspath(p): t for p, t in (open_texts or {}).items()}
            texts[key] = text
            sources.update(texts)
            policy = policy_paths(document, roots, folders)
            paths = dict.fromkeys([*policy, key, *(os.path.abspath(p) for p in named)])
            load_policy(
                list(paths),
                texts=texts,
                tests=tests,
                builtins=test_builtins() if tests else None,
                parse_cache=parse_cache,
            )
    except PolicyErrors as exc:
        errors = exc.errors
    except PolicyError as exc:
        errors = [exc]
    except Exception as exc:  # the compiler failed: say so, never take the editor down
        errors = [
            PolicyError(
                "internal_error", f"the compiler failed: {type(exc).__name__}", Location(key, 0, 0)
            )
        ]
    else:
        errors = []
    for error in errors[:_MAX_PROBLEMS]:
        path = _error_path(error.path, key, sources)
        if path not in sources:
            sources[path] = _read(path)
        found.setdefault(path, []).append(
            Problem(path, error.code, _message(error), _span(sources[path], error.location))
        )
    return found


#: The most errors reported at once (the compiler stops collecting sooner).
_MAX_PROBLEMS: Final = 500


def _error_path(path: str, document: str, known: Mapping[str, str]) -> str:
    """The file an error is about; errors about no file (`<environment>`, `<policy>`) and
    about a directory go on the document."""
    if path == document:
        return path
    if path.startswith("<"):
        return document
    full = os.path.abspath(path)
    return full if full in known or os.path.isfile(full) else document


def _read(path: str) -> str:
    try:
        return read_policy_source(Path(path))
    except (PolicyError, OSError):
        return ""


def _message(error: PolicyError) -> str:
    return f"{error.message} ({error.hint})" if error.hint else error.message


_IDENTIFIER: Final = re.compile(r"[A-Za-z0-9_]+")


def _span(text: str, location: Location) -> Span:
    """Where an error's location falls in `text`: the located stretch when its end is
    known, else the word (or character) at its start; the first line for a whole-file
    error. Clamped to the text."""
    lines = text.split("\n")
    if location.line <= 0:
        return Span(0, 0, 0, len(lines[0].rstrip("\r")))
    line = min(location.line, len(lines)) - 1
    content = lines[line].rstrip("\r")
    char = min(max(location.col - 1, 0), len(content))
    if location.end_line > 0:
        end_line = min(location.end_line, len(lines)) - 1
        end_char = min(max(location.end_col - 1, 0), len(lines[end_line].rstrip("\r")))
        if (end_line, end_char) > (line, char):
            return Span(line, char, end_line, end_char)
    word = _IDENTIFIER.match(content, char)
    end = word.end() if word is not None else min(char + 1, len(content))
    return Span(line, char, line, end)


# ── the schema, as hover and completion show it ──────────────────────────────────────


@attrs.frozen
class Field:
    """A field of the input document: its name, type (as the schema writes it), the
    schema's doc line, and the `Record.field` it is."""

    name: str
    type: str
    doc: str
    record: str


def _non_null(type_: str) -> str:
    parts = [p.strip() for p in type_.split("|")]
    rest = [p for p in parts if p != "null"]
    return rest[0] if len(rest) == 1 else type_.strip()


_CONTAINER: Final = re.compile(r"(array|set|object)<(.+)>")


def _element(type_: str, as_key: bool = False) -> str | None:
    """The type of `x` in `some x in <type>` (of `k` in `some k, x in …` with `as_key`)."""
    inner = _non_null(type_)
    if inner == "any":
        return "any"
    match = _CONTAINER.fullmatch(inner)
    if match is None:
        return None
    kind, element = match.groups()
    if as_key:
        return {"array": "number", "set": element, "object": "string"}[kind]
    return element


def _fields(type_: str | None) -> list[Field]:
    record = _non_null(type_) if type_ is not None else None
    if record not in RECORDS:
        return []
    return [
        Field(name, field_type, FIELD_DOCS.get(f"{record}.{name}", ""), f"{record}.{name}")
        for name, field_type in RECORDS[record].items()
    ]


def _step(type_: str, step: str | None) -> tuple[str, Field | None] | None:
    """The type after one step of a reference (`.name`, or an index when `step` is None)
    and the field it reads, if it reads one."""
    if step is None:
        element = _element(type_)
        return (element, None) if element is not None else None
    for field in _fields(type_):
        if field.name == step:
            return field.type, field
    return ("any", None) if _non_null(type_) == "any" else None


# ── references in text ───────────────────────────────────────────────────────────────


def _is_name(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def _blank(text: str) -> str:
    """`text` with its comments and the insides of its strings replaced by spaces, so
    that offsets stay and neither is read as code."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif c in '"`':
            i += 1
            while i < n and text[i] != c and text[i] != "\n":
                if c == '"' and text[i] == "\\" and i + 1 < n:
                    out[i] = " "
                    i += 1
                out[i] = " "
                i += 1
            i += 1
        else:
            i += 1
    return "".join(out)


def _matching_open(line: str, close: int) -> int | None:
    depth = 0
    for i in range(close, -1, -1):
        if line[i] == "]":
            depth += 1
        elif line[i] == "[":
            depth -= 1
            if depth == 0:
                return i
    return None


#: A step: a field name, or None for an index (`[i]`, `[_]`, `[0]`).
Steps = list[str | None]


def _ref_ending_at(line: str, end: int) -> Steps | None:
    """The steps of the reference that ends just before `end` (`input.sql.statements[_]`
    → input, sql, statements, None), or None when no reference ends there."""
    steps: Steps = []
    i = end
    while True:
        while i > 0 and line[i - 1] == "]":
            opening = _matching_open(line, i - 1)
            if opening is None:
                return None
            steps.append(None)
            i = opening
        start = i
        while start > 0 and _is_name(line[start - 1]):
            start -= 1
        name = line[start:i]
        if not name or name[0].isdigit():
            return None
        steps.append(name)
        i = start
        if i > 0 and line[i - 1] == ".":
            i -= 1
            continue
        return steps[::-1]


_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_REF: Final = rf"{_NAME}(?:\.{_NAME}|\[[^\]\n]*\])*"
_IMPORT: Final = re.compile(
    rf"^[ \t]*import[ \t]+(input(?:\.{_NAME})*)(?:[ \t]+as[ \t]+({_NAME}))?", re.MULTILINE
)
_ITERATION: Final = re.compile(
    rf"\b(?:some|every)[ \t]+({_NAME})(?:[ \t]*,[ \t]*({_NAME}))?[ \t]+in[ \t]+({_REF})"
)
_ASSIGNMENT: Final = re.compile(rf"(?<![\w.])({_NAME})[ \t]*:=[ \t]*({_REF})(?![\w.\[(])")


def _resolve(
    code: str, steps: Steps, offset: int, depth: int = 0
) -> tuple[str, Field | None] | None:
    """The type `steps` name at `offset` of `code` (blanked text), and the last field
    read on the way."""
    if not steps or steps[0] is None or depth > 8:
        return None
    head = _head_type(code, steps[0], offset, depth)
    if head is None:
        return None
    type_, field = head
    for step in steps[1:]:
        moved = _step(type_, step)
        if moved is None:
            return None
        type_, field = moved
    return type_, field


def _head_type(code: str, name: str, offset: int, depth: int) -> tuple[str, Field | None] | None:
    """The type of the variable `name` as bound before `offset`: the nearest `some`,
    `every` or `:=` binding it to a reference, else an import, else `input` itself; with
    the field it holds when it holds one (`import input.sql.statements`)."""
    before = code[:offset]
    bindings: list[tuple[int, str, Steps | None, bool]] = []
    for match in _ITERATION.finditer(before):
        first, second, ref = match.groups()
        if name in (first, second):
            as_key = second is not None and name == first
            bindings.append((match.start(), "each", _ref_ending_at(ref, len(ref)), as_key))
    for match in _ASSIGNMENT.finditer(before):
        if match.group(1) == name:
            ref = match.group(2)
            bindings.append((match.start(), "is", _ref_ending_at(ref, len(ref)), False))
    # the nearest binding first; each resolves from the text before it (so `x := x.y`
    # reads the `x` bound earlier, and resolution always ends)
    for position, how, steps, as_key in sorted(bindings, key=lambda b: b[0], reverse=True):
        resolved = _resolve(code, steps, position, depth + 1) if steps is not None else None
        if resolved is None:
            continue
        if how == "is":
            return resolved
        element = _element(resolved[0], as_key)
        return (element, None) if element is not None else None
    for match in _IMPORT.finditer(code):
        path, alias = match.groups()
        parts: Steps = list(path.split("."))
        if (alias or parts[-1]) == name and parts != [name]:
            return _resolve(code, parts, 0, depth + 1)
    return (INPUT_TYPE, None) if name == "input" else None


def _offset(text: str, line: int, char: int) -> int:
    lines = text.split("\n")
    line = min(max(line, 0), len(lines) - 1)
    return sum(len(x) + 1 for x in lines[:line]) + min(max(char, 0), len(lines[line]))


def _display(steps: Steps) -> str:
    return "".join(f".{s}" if s is not None else "[_]" for s in steps).lstrip(".")


@attrs.frozen
class Hover:
    """What hovering over a reference shows: its path, type and (for a field) the doc
    line, and the span of the name under the cursor."""

    path: str
    type: str
    doc: str
    span: Span

    def markdown(self) -> str:
        text = f"`{self.path}`: `{self.type}`"
        return f"{text}\n\n{self.doc}" if self.doc else text


def hover(text: str, line: int, char: int) -> Hover | None:
    """The input field (or variable holding one) named at `line`:`char`, if any."""
    code = _blank(text)
    lines = code.split("\n")
    if not 0 <= line < len(lines):
        return None
    content = lines[line]
    start = end = min(max(char, 0), len(content))
    while start > 0 and _is_name(content[start - 1]):
        start -= 1
    while end < len(content) and _is_name(content[end]):
        end += 1
    if start == end or content[start].isdigit():
        return None
    name = content[start:end]
    if start > 0 and content[start - 1] == ".":
        base = _ref_ending_at(content, start - 1)
        if base is None:
            return None
        steps: Steps = [*base, name]
    else:
        steps = [name]
    # bindings up to the end of the line count: the variable a `some` declares is known
    # where it is declared
    resolved = _resolve(code, steps, _offset(code, line, len(content)))
    if resolved is None:
        return None
    type_, field = resolved
    if field is not None:
        doc = field.doc
    elif len(steps) == 1 and name == "input":
        doc = "The request's facts, as the input document's schema types them."
    else:
        doc = ""
    return Hover(_display(steps), type_, doc, Span(line, start, line, end))


def complete(text: str, line: int, char: int) -> list[Field]:
    """The fields that may follow the reference before the dot at or just before
    `line`:`char` (`input.sql.` → the fields of `Sql`); none elsewhere."""
    code = _blank(text)
    lines = code.split("\n")
    if not 0 <= line < len(lines):
        return []
    content = lines[line][: max(char, 0)]
    start = len(content)
    while start > 0 and _is_name(content[start - 1]):
        start -= 1
    if start == 0 or content[start - 1] != ".":
        return []
    steps = _ref_ending_at(content, start - 1)
    if steps is None:
        return []
    resolved = _resolve(code, steps, _offset(code, line, start))
    return _fields(resolved[0]) if resolved is not None else []
