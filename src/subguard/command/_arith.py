"""Arithmetic, read the way every shell might run it.

Two hazards hide in shell arithmetic, and both are invisible to a reader that takes
`((…))` and `$((…))` for numbers:

- `((rm -rf /etc))` is arithmetic in bash, but nested subshells in a POSIX shell:
  dash (Debian's `/bin/sh`, what `sh -c` and `subguard exec --shell` run) starts
  `rm -rf /etc`. The content of a `((…))` command is therefore also read as a script
  (`nested_subshells`), and the commands it holds are judged like any other.
- Arithmetic evaluates the *value* of each variable it names, and an array subscript in
  that value is expanded first, command substitutions included: after
  `x='a[$(rm -rf /)]'`, `echo $((x))` runs `rm -rf /`. A variable named in arithmetic
  whose value this text does not know for a plain literal (a substitution, an expansion,
  text read with `read`, a loop over file names) makes the text malformed
  (`hazard`): what it would run cannot be known.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["hazard", "nested_subshells"]

_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
# a value arithmetic can read without running anything: digits, a name, a sign
_PLAIN_VALUE = re.compile(rb"[-+]?[A-Za-z0-9_.#]*")
_PLAIN_LOOP_WORD = re.compile(rb"[A-Za-z0-9_.{}\-]*")
# programs that set the variables named in their arguments from text they read
_READERS = frozenset((b"read", b"readarray", b"mapfile", b"getopts", b"printf"))
_ARITHMETIC_TESTS = frozenset((b"-eq", b"-ne", b"-lt", b"-le", b"-gt", b"-ge"))
_DECLARERS = frozenset((b"declare", b"typeset", b"local", b"export", b"readonly"))
# bytes without which the text holds no arithmetic at all (the common case: skip the walk)
_MARKERS = (b"((", b"$[", b"[", b"let", b"-i")


def nested_subshells(node: Any, source: bytes) -> str | None:
    """The content of a `((…))` command read as nested subshells (`(…)`), or None when
    `node` is not one."""
    children = node.children
    if node.type != "compound_statement" or not children or children[0].type != "((":
        return None
    text = source[node.start_byte : node.end_byte]
    if not text.endswith(b"))"):
        return None
    return text[1:-1].decode("utf-8", "surrogateescape")


def hazard(root: Any, source: bytes) -> str | None:
    """Why arithmetic in this text may run a command, with its place; None when it cannot."""
    if not any(marker in source for marker in _MARKERS):
        return None
    unknown: set[bytes] = set()
    contexts: list[Any] = []
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind == "variable_assignment":
            _assignment(node, source, unknown)
        elif kind == "for_statement":
            _loop(node, source, unknown)
        elif kind == "command":
            _command(node, source, unknown, contexts)
        elif kind == "declaration_command":
            _declaration(node, source, contexts)
        if _is_context(node, source):
            contexts.append(node)
        stack.extend(node.children)
    if not unknown:
        return None
    for context in contexts:
        for name in _IDENTIFIER.findall(source[context.start_byte : context.end_byte]):
            if name in unknown:
                line, col = context.start_point
                return (
                    f"arithmetic reads `{name.decode('ascii')}`, whose value is not known here"
                    f" (line {line + 1}, column {col + 1})"
                )
    return None


def _is_context(node: Any, source: bytes) -> bool:
    """Whether `node` evaluates what it holds as arithmetic."""
    kind = node.type
    if kind in ("arithmetic_expansion", "c_style_for_statement", "subscript"):
        return True
    if kind == "compound_statement":
        return bool(node.children) and node.children[0].type == "(("
    if kind == "test_command":  # `[[ $x -eq 1 ]]` evaluates both sides
        return any(
            c.type == "test_operator" and source[c.start_byte : c.end_byte] in _ARITHMETIC_TESTS
            for c in _descendants(node)
        )
    return False


def _descendants(node: Any) -> list[Any]:
    found: list[Any] = []
    stack = list(node.children)
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(child.children)
    return found


def _name(node: Any, source: bytes) -> bytes:
    if node.type == "subscript":
        node = node.child_by_field_name("name") or node
    return source[node.start_byte : node.end_byte]


def _assignment(node: Any, source: bytes, unknown: set[bytes]) -> None:
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if name is None:
        return
    text = source[value.start_byte : value.end_byte] if value is not None else b""
    if len(text) >= 2 and text[0] == text[-1] and text[:1] in (b"'", b'"'):
        text = text[1:-1]
    if not _PLAIN_VALUE.fullmatch(text):
        unknown.add(_name(name, source))


def _loop(node: Any, source: bytes, unknown: set[bytes]) -> None:
    variable = node.child_by_field_name("variable")
    if variable is None:
        return
    values = [c for c in node.children_by_field_name("value")]
    # `for x; do` walks the arguments; a glob walks file names: both unknown
    if not values or not all(
        _PLAIN_LOOP_WORD.fullmatch(source[v.start_byte : v.end_byte]) for v in values
    ):
        unknown.add(source[variable.start_byte : variable.end_byte])


def _words(node: Any, source: bytes) -> list[bytes]:
    return [
        source[c.start_byte : c.end_byte] for c in node.named_children if c.type != "command_name"
    ]


def _program(node: Any, source: bytes) -> bytes:
    name = node.child_by_field_name("name")
    return source[name.start_byte : name.end_byte].rpartition(b"/")[2] if name is not None else b""


def _command(node: Any, source: bytes, unknown: set[bytes], contexts: list[Any]) -> None:
    program = _program(node, source)
    if program in _READERS:
        for word in _words(node, source):
            if _IDENTIFIER.fullmatch(word):
                unknown.add(word)
    elif program == b"let":
        contexts.append(node)


def _declaration(node: Any, source: bytes, contexts: list[Any]) -> None:
    head = source[node.children[0].start_byte : node.children[0].end_byte] if node.children else b""
    if head not in _DECLARERS:
        return
    for child in node.named_children:
        text = source[child.start_byte : child.end_byte]
        if child.type == "word" and text.startswith(b"-") and b"i" in text:
            contexts.append(node)  # an integer variable: every value given is arithmetic
            return
