"""The word normaliser: what a shell word becomes once the shell has read it.

tree-sitter-bash finds the words; this module turns each word's syntax tree into the
strings the program would receive: quotes removed, `$'…'` decoded, backslashes
resolved, braces expanded (`{rm,-rf,/}`, `/{etc,usr}`, `{1..3}`). A word whose value
is only known at run time (`$x`, `${x}`, `$(…)`, backticks, `$((…))`) is marked
`dynamic`, and a word with unquoted glob characters is marked `glob`: rules cannot
know what either names, and fail closed on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["Word", "ansi_c", "expand_braces", "normalise_word", "unescape_unquoted"]

#: Node types whose value is only known when the command runs.
DYNAMIC_NODES = frozenset(
    ("simple_expansion", "expansion", "command_substitution", "arithmetic_expansion")
)
#: Brace expansion never produces more words than this; beyond it the word is dynamic.
MAX_BRACE_WORDS = 256

_GLOB = frozenset("*?[")


@attrs.frozen
class Word:
    """One word as the program receives it."""

    #: The value (for a dynamic word, its source text).
    text: str
    #: Part of the value is only known at run time.
    dynamic: bool = False
    #: Unquoted glob characters: the shell may replace it with file names.
    glob: bool = False
    #: The word had quotes or escapes (`'-rf'`, `\\rm`).
    quoted: bool = False
    #: For a process substitution (`<(…)`), the last command inside it: what the
    #: program reads from the path it receives.
    source: Any = attrs.field(default=None, eq=False, hash=False, repr=False)


# A piece of a word before brace expansion: its text and whether the shell may treat it
# specially (one unquoted `{`, `,`, `}` or glob character). Text the shell takes
# literally is one piece however long, so a word costs its pieces, not its characters.
_Char = tuple[str, bool]


def _decode_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the ANSI-C escape at `text[i]` (just after the backslash)."""
    c = text[i]
    simple = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
              "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip
    if c in simple:
        return simple[c], i + 1
    if c in "01234567":
        m = re.match(r"[0-7]{1,3}", text[i:])
        assert m is not None
        return chr(int(m.group(), 8) & 0xFF), i + len(m.group())
    for prefix, width in (("x", 2), ("u", 4), ("U", 8)):
        if c == prefix:
            m = re.match(rf"[0-9a-fA-F]{{1,{width}}}", text[i + 1 :])
            if m is None:
                return "\\" + c, i + 1
            code = int(m.group(), 16)
            return (chr(code) if code < 0x110000 else "\ufffd"), i + 1 + len(m.group())
    if c == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    return "\\" + c, i + 1


def ansi_c(body: str) -> str:
    """The value of `$'body'`."""
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            value, i = _decode_escape(body, i + 1)
            out.append(value)
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


_UNQUOTED = re.compile(r"\\(?:\n|.)|[{},*?\[~]", re.DOTALL)
_IN_DOUBLE_QUOTES = re.compile(r"\\[$`\"\\\n]")


def unescape_unquoted(text: str) -> list[_Char]:
    """Pieces of unquoted word text: `\\x` is a literal x, `\\<newline>` vanishes, and each
    character the shell may treat specially is a piece of its own."""
    out: list[_Char] = []
    pos = 0
    for m in _UNQUOTED.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], False))
        token = m.group()
        if token[0] == "\\":
            if token[1] != "\n":
                out.append((token[1], False))
        else:
            out.append((token, True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _double_quoted(text: str) -> list[_Char]:
    """Text between double quotes (outside expansions), as one piece."""
    if "\\" in text:
        text = _IN_DOUBLE_QUOTES.sub(lambda m: "" if m.group()[1] == "\n" else m.group()[1], text)
    return [(text, False)] if text else []


@attrs.define
class _Builder:
    chars: list[_Char] = attrs.field(factory=list)
    dynamic: bool = False
    quoted: bool = False


def _double_quoted_literal(text: str) -> list[_Char]:
    return [(text, False)] if text else []


def _text(node: Any, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "surrogateescape")


def _add(node: Any, source: bytes, b: _Builder, *, in_quotes: bool = False) -> None:
    kind = node.type
    if kind in DYNAMIC_NODES:
        b.dynamic = True
        b.chars.append((_text(node, source), False))
        return
    if kind == "process_substitution":
        # the program receives a path such as /dev/fd/63; what it reads is the inner
        # commands' output, analysed as commands of their own
        b.chars.append(("/dev/fd/63", False))
        return
    if kind == "raw_string":
        b.quoted = True
        b.chars.extend(_double_quoted_literal(_text(node, source)[1:-1]))
        return
    if kind == "ansi_c_string":
        b.quoted = True
        b.chars.extend(_double_quoted_literal(ansi_c(_text(node, source)[2:-1])))
        return
    if kind in ("string", "translated_string"):
        b.quoted = True
        start = node.start_byte + (2 if kind == "translated_string" else 1)
        end = node.end_byte - 1
        pos = start
        for child in node.named_children:
            if child.type == "string_content":
                continue
            if child.start_byte > pos:
                b.chars.extend(
                    _double_quoted(
                        source[pos : child.start_byte].decode("utf-8", "surrogateescape")
                    )
                )
            _add(child, source, b, in_quotes=True)
            pos = max(pos, child.end_byte)
        if end > pos:
            b.chars.extend(_double_quoted(source[pos:end].decode("utf-8", "surrogateescape")))
        return
    if kind == "concatenation" or (node.named_child_count and kind not in ("word", "number")):
        pos = node.start_byte
        for child in node.children:
            if child.start_byte > pos:
                gap = source[pos : child.start_byte].decode("utf-8", "surrogateescape")
                b.chars.extend(unescape_unquoted(gap))
            _add(child, source, b, in_quotes=in_quotes)
            pos = max(pos, child.end_byte)
        if node.end_byte > pos:
            b.chars.extend(
                unescape_unquoted(source[pos : node.end_byte].decode("utf-8", "surrogateescape"))
            )
        return
    text = _text(node, source)
    if in_quotes:
        b.chars.extend(_double_quoted(text))
        return
    if "\\" in text:
        b.quoted = True
    b.chars.extend(unescape_unquoted(text))


def normalise_word(nodes: Iterable[Any], source: bytes) -> list[Word]:
    """The words that adjacent argument nodes (one shell word) become after expansion.

    tree-sitter may split one shell word into several nodes (`$"x"`); the caller passes
    every node of the word, adjacent in the source.
    """
    b = _Builder()
    previous: Any = None
    for node in nodes:
        if previous is not None and previous.type == "$" and node.type == "string":
            b.chars.pop()  # `$"…"` is a translated string: the `$` is not part of it
        _add(node, source, b)
        previous = node
    raw = _tilde(b.chars)
    if not any(special for _, special in raw):  # nothing for the shell to expand
        return [Word("".join([c for c, _ in raw]), dynamic=b.dynamic, glob=False, quoted=b.quoted)]
    expanded = expand_braces(raw)
    if expanded is None:
        text = "".join(c for c, _ in raw)
        return [Word(text, dynamic=True, glob=False, quoted=b.quoted)]
    words: list[Word] = []
    for chars in expanded:
        text = "".join(c for c, _ in chars)
        glob = any(special and c in _GLOB for c, special in chars)
        words.append(Word(text, dynamic=b.dynamic, glob=glob, quoted=b.quoted))
    return words


def _tilde(chars: list[_Char]) -> list[_Char]:
    # `~` and `~user` stay as written: the path normaliser reads them as a home directory
    return chars


def expand_braces(chars: list[_Char]) -> list[list[_Char]] | None:
    """Bash brace expansion over unquoted `{a,b}` and `{1..3}`; None when the result
    would exceed `MAX_BRACE_WORDS` words."""
    result = _expand(chars, 0)
    return result


def _find_brace(chars: list[_Char]) -> tuple[int, int, list[int]] | None:
    """The first unquoted `{…}` with a top-level comma or a `..` range: (open, close, commas)."""
    for open_at, (c, special) in enumerate(chars):
        if not (special and c == "{"):
            continue
        depth, commas = 0, list[int]()
        for j in range(open_at + 1, len(chars)):
            d, sp = chars[j]
            if not sp:
                continue
            if d == "{":
                depth += 1
            elif d == "}":
                if depth == 0:
                    inner = "".join(x for x, _ in chars[open_at + 1 : j])
                    if commas or re.fullmatch(
                        r"-?\d+\.\.-?\d+(\.\.-?\d+)?|[A-Za-z]\.\.[A-Za-z](\.\.-?\d+)?", inner
                    ):
                        return open_at, j, commas
                    break
                depth -= 1
            elif d == "," and depth == 0:
                commas.append(j)
    return None


def _sequence(inner: str) -> list[str]:
    parts = inner.split("..")
    step = abs(int(parts[2])) if len(parts) == 3 and parts[2].lstrip("-").isdigit() else 1
    step = step or 1
    a, b = parts[0], parts[1]
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        x, y = int(a), int(b)
        if abs(y - x) // step > MAX_BRACE_WORDS:
            return ["\0" for _ in range(MAX_BRACE_WORDS + 1)]
        rng = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
        return [str(v) for v in rng]
    x, y = ord(a), ord(b)
    rng = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
    return [chr(v) for v in rng]


def _expand(chars: list[_Char], depth: int) -> list[list[_Char]] | None:
    if depth > 16:
        return None
    found = _find_brace(chars)
    if found is None:
        return [chars]
    open_at, close_at, commas = found
    prefix, suffix = chars[:open_at], chars[close_at + 1 :]
    if commas:
        bounds = [open_at, *commas, close_at]
        alternatives = [chars[bounds[k] + 1 : bounds[k + 1]] for k in range(len(bounds) - 1)]
    else:
        inner = "".join(c for c, _ in chars[open_at + 1 : close_at])
        alternatives = [[(c, False) for c in v] for v in _sequence(inner)]
    out: list[list[_Char]] = []
    for alt in alternatives:
        expanded = _expand(prefix + alt + suffix, depth + 1)
        if expanded is None:
            return None
        out.extend(expanded)
        if len(out) > MAX_BRACE_WORDS:
            return None
    return out
