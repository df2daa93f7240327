"""Split a shell command line into simple commands the way a POSIX shell would, never failing.

`shlex` splits words well but cannot say whether a `|` or `;` was quoted, treats a
newline as plain whitespace (so `echo hi\\nrm -rf /` would hide the `rm`), and knows
nothing of `$(…)` or backticks. Each of those would let a command slip past a rule, so
this module keeps shlex's word rules (POSIX quoting and escapes) but tracks operators,
newlines and command substitutions itself.
"""

from __future__ import annotations

import attrs

__all__ = ["Split", "split_commands"]

# Operators that end a simple command, longest first so `&&` wins over `&`.
_SEPARATORS = ("&&", "||", ";;", "|&", "|", "&", ";", "(", ")")
# Redirections: the word after one is a file (or fd), not an argument.
_REDIRECTIONS = ("&>>", "<<<", "<<-", ">>", "<<", "<&", ">&", "&>", "<>", ">|", "<", ">")


@attrs.frozen
class Split:
    """What a command line splits into."""

    #: Each simple command as its words, quotes removed, in the order they run.
    commands: tuple[tuple[str, ...], ...]
    #: Text of `$(…)`, `` `…` `` and `<(…)` substitutions, to be parsed as commands too.
    substitutions: tuple[str, ...]
    #: Why the text is not well-formed shell (an unclosed quote), or None.
    error: str | None


def split_commands(text: str) -> Split:
    """Split `text` into simple commands; best effort on malformed input, never raising."""
    commands: list[tuple[str, ...]] = []
    substitutions: list[str] = []
    error: str | None = None
    words: list[str] = []
    word: list[str] = []
    in_word = False
    redirect_target = False  # the next word completes a redirection
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal in_word, redirect_target
        if in_word:
            if redirect_target:
                redirect_target = False
            else:
                words.append("".join(word))
        word.clear()
        in_word = False

    def end_command() -> None:
        end_word()
        if words:
            commands.append(tuple(words))
        words.clear()

    def substitution(start: int, opener: str) -> int:
        """Record the substitution whose body starts at `start`; return the index after it."""
        nonlocal error
        depth, j, quote = 1, start, ""
        while j < n:
            c = text[j]
            if quote:
                if c == quote:
                    quote = ""
                elif c == "\\" and quote == '"':
                    j += 1
            elif c == "\\":
                j += 1
            elif c in "'\"":
                quote = c
            elif opener == "`" and c == "`":
                depth = 0
            elif opener == "(" and c == "(":
                depth += 1
            elif opener == "(" and c == ")":
                depth -= 1
            if depth == 0:
                substitutions.append(text[start:j])
                return j + 1
            j += 1
        error = error or f"unclosed `{'$(' if opener == '(' else '`'}`"
        substitutions.append(text[start:])
        return n

    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i += 2  # line continuation
                continue
            word.append(text[i + 1] if i + 1 < n else "\\")
            in_word = True
            i += 2
            continue
        if c == "'":
            close = text.find("'", i + 1)
            if close < 0:
                error = error or "unclosed single quote"
                close = n
            word.append(text[i + 1 : close])
            in_word = True
            i = close + 1
            continue
        if c == '"':
            in_word = True
            i += 1
            while i < n and text[i] != '"':
                d = text[i]
                if d == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        word.append(text[i + 1])
                    i += 2
                    continue
                if d == "$" and text.startswith("$(", i) and not text.startswith("$((", i):
                    end = substitution(i + 2, "(")
                    word.append(text[i:end])
                    i = end
                    continue
                if d == "`":
                    end = substitution(i + 1, "`")
                    word.append(text[i:end])
                    i = end
                    continue
                word.append(d)
                i += 1
            if i >= n:
                error = error or "unclosed double quote"
            i += 1
            continue
        if c == "$" and text.startswith("$((", i):
            # arithmetic expansion runs no command; keep it as part of the word
            close = text.find("))", i + 3)
            end = n if close < 0 else close + 2
            word.append(text[i:end])
            in_word = True
            i = end
            continue
        if c == "$" and text.startswith("$(", i):
            end = substitution(i + 2, "(")
            word.append(text[i:end])
            in_word = True
            i = end
            continue
        if c == "`":
            end = substitution(i + 1, "`")
            word.append(text[i:end])
            in_word = True
            i = end
            continue
        if c in "<>" and text.startswith("(", i + 1) and not in_word:
            # process substitution <(…) / >(…) runs a command too
            end = substitution(i + 2, "(")
            word.append(text[i:end])
            in_word = True
            i = end
            continue
        if c in " \t\r":
            end_word()
            i += 1
            continue
        if c == "\n":
            end_command()
            i += 1
            continue
        if c == "#" and not in_word:
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        redirection = next((r for r in _REDIRECTIONS if text.startswith(r, i)), None)
        if redirection is not None:
            # `2>` / `10<`: digits right before the operator name a file descriptor
            if in_word and "".join(word).isdigit():
                word.clear()
                in_word = False
            end_word()
            redirect_target = True
            i += len(redirection)
            continue
        separator = next((s for s in _SEPARATORS if text.startswith(s, i)), None)
        if separator is not None:
            end_command()
            redirect_target = False
            i += len(separator)
            continue
        word.append(c)
        in_word = True
        i += 1
    end_command()
    return Split(tuple(commands), tuple(substitutions), error)
