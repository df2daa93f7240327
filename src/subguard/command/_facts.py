"""Turn a shell command line into the facts rules see as `input.command`.

Every program the line would start counts: each stage of a pipeline or list, commands
in `$(…)` and backticks, the program behind a wrapper (`sudo`, `env`, `timeout`, …) as
well as the wrapper itself, and the script of a nested shell (`bash -c '…'`, `eval`).
It also follows commands sent elsewhere to run: `ssh host CMD` and `kubectl exec POD -- CMD`.
A rule written over `pipeline` therefore sees `rm` however it is dressed up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs

from subguard.command._clients import sql_texts
from subguard.command._words import split_commands

__all__ = ["CommandFacts", "Invocation", "parse_command"]

#: Nested shells and substitutions are expanded this deep; deeper text is not analysed.
MAX_DEPTH = 5

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")

_SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "busybox"))

# Wrappers: program name → (short options that take a value, long options that do).
_WRAPPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sudo": ("ugpChDrtTU", ("--user", "--group", "--prompt", "--close-from", "--host",
                            "--chdir", "--role", "--type", "--command-timeout", "--other-user")),
    "doas": ("uC", ()),
    "env": ("uCS", ("--unset", "--chdir", "--split-string")),
    "nohup": ("", ()),
    "time": ("fo", ("--format", "--output")),
    "exec": ("a", ()),
    "command": ("", ()),
    "builtin": ("", ()),
    "nice": ("n", ("--adjustment",)),
    "ionice": ("cnp", ("--class", "--classdata", "--pid")),
    "stdbuf": ("ioe", ("--input", "--output", "--error")),
    "setsid": ("", ()),
    "timeout": ("sk", ("--signal", "--kill-after")),
    "xargs": ("aEdIiLlnPs", ("--arg-file", "--eof", "--delimiter", "--replace", "--max-lines",
                             "--max-args", "--max-procs", "--max-chars")),
    "chroot": ("", ("--userspec", "--groups")),
    "unbuffer": ("", ()),
}  # fmt: skip


@attrs.frozen
class Invocation:
    """One program the command line starts, with its arguments as it receives them."""

    #: Base name of the program (`/usr/bin/rm` → `rm`).
    program: str
    #: Arguments including the program as written.
    argv: tuple[str, ...]

    def to_input(self) -> dict[str, Any]:
        return {"program": self.program, "argv": self.argv}


@attrs.frozen
class CommandFacts:
    """What a command line would do, as far as its text tells."""

    #: The first invocation's program ("" for an empty line).
    program: str
    #: The first invocation's arguments, program included.
    argv: tuple[str, ...]
    #: Every invocation, in the order they appear (wrappers before what they wrap).
    pipeline: tuple[Invocation, ...]
    #: SQL handed to database clients on the command line (`psql -c`, `mysql -e`, …).
    sql_texts: tuple[str, ...]
    #: Why the text is not well-formed shell, or None; the facts are then best effort.
    parse_error: str | None = None

    def to_input(self, sql: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `Command` record of the input document; `sql` is the analysis of `sql_texts`."""
        return {
            "program": self.program,
            "argv": self.argv,
            "pipeline": tuple(inv.to_input() for inv in self.pipeline),
            "sql": sql,
        }


def parse_command(text: str) -> CommandFacts:
    """Analyse one shell command line. Never raises: malformed text sets `parse_error`."""
    invocations: list[Invocation] = []
    errors: list[str] = []
    try:
        _collect(text, 0, invocations, errors)
    except RecursionError:  # pragma: no cover - bounded by MAX_DEPTH, kept as a guard
        errors.append("command is nested too deeply")
    sql: list[str] = []
    for inv in invocations:
        sql.extend(sql_texts(inv.program, inv.argv))
    first = _first_program(invocations)
    return CommandFacts(
        program=first.program if first else "",
        argv=first.argv if first else (),
        pipeline=tuple(invocations),
        sql_texts=tuple(sql),
        parse_error=errors[0] if errors else None,
    )


def _first_program(invocations: Sequence[Invocation]) -> Invocation | None:
    # the first invocation that is not a wrapper: `sudo rm x` is about `rm`
    for inv in invocations:
        if inv.program not in _WRAPPERS:
            return inv
    return invocations[0] if invocations else None


def _collect(text: str, depth: int, out: list[Invocation], errors: list[str]) -> None:
    if depth > MAX_DEPTH:
        errors.append("command is nested too deeply")
        return
    split = split_commands(text)
    if split.error:
        errors.append(split.error)
    for words in split.commands:
        _invocation(list(words), depth, out, errors)
    for inner in split.substitutions:
        _collect(inner, depth + 1, out, errors)


def _basename(word: str) -> str:
    return word.rstrip("/").rpartition("/")[2] or word


def _invocation(words: list[str], depth: int, out: list[Invocation], errors: list[str]) -> None:
    # leading assignments (`PGPASSWORD=x psql …`) and reserved words (`if`, `!`, `{`)
    while words and (_ASSIGNMENT.match(words[0]) or words[0] in _RESERVED):
        words = words[1:]
    if not words:
        return
    program = _basename(words[0])
    out.append(Invocation(program, tuple(words)))
    if program in _WRAPPERS:
        inner = _unwrap(program, words)
        if program == "env":
            split_string = _option_value(words, "-S", "--split-string")
            if split_string is not None:
                _collect(split_string, depth + 1, out, errors)
                return
        if inner:
            _invocation(inner, depth, out, errors)
    elif program in _SHELLS or program == "su":
        script = _shell_script(words)
        if script is not None:
            _collect(script, depth + 1, out, errors)
    elif program == "eval":
        _collect(" ".join(words[1:]), depth + 1, out, errors)
    elif program in ("kubectl", "oc") and "exec" in words and "--" in words:
        # `kubectl exec POD -- cmd …` runs cmd (as argv, not through a shell) in the pod
        _invocation(words[words.index("--") + 1 :], depth + 1, out, errors)
    elif program == "ssh":
        remote = _ssh_command(words)
        if remote:
            _collect(remote, depth + 1, out, errors)


# ssh options that take a value; the first operand is the host, the rest the command.
_SSH_WITH_VALUE = frozenset("BbcDEeFIiJLlmOoPpQRSWw")


def _ssh_command(words: list[str]) -> str:
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "--":
        flags = words[i][1:]
        takes = next((j for j, f in enumerate(flags) if f in _SSH_WITH_VALUE), None)
        i += 2 if takes is not None and takes == len(flags) - 1 else 1
    if i < len(words) and words[i] == "--":
        i += 1
    # ssh joins the remaining words with spaces and the remote shell parses them again
    return " ".join(words[i + 1 :])


_RESERVED = frozenset(("!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while",
                       "until", "esac", "time"))  # fmt: skip


def _unwrap(program: str, words: list[str]) -> list[str]:
    """The command a wrapper runs: what follows its options (and, for env, assignments)."""
    short, long = _WRAPPERS[program]
    i = 1
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word.startswith("--"):
            name, eq, _ = word.partition("=")
            i += 2 if name in long and not eq else 1
            continue
        if word.startswith("-") and len(word) > 1:
            flags = word[1:]
            takes = next((j for j, f in enumerate(flags) if f in short), None)
            # a value-taking flag at the end of its cluster consumes the next word
            i += 2 if takes is not None and takes == len(flags) - 1 else 1
            continue
        if program == "env" and _ASSIGNMENT.match(word):
            i += 1
            continue
        break
    inner = words[i:]
    if program == "timeout" and inner:
        inner = inner[1:]  # the duration
    return inner


def _option_value(words: list[str], short: str, long: str) -> str | None:
    for i, word in enumerate(words[1:], start=1):
        if word in (short, long):
            return words[i + 1] if i + 1 < len(words) else None
        if word.startswith(short) and len(word) > len(short) and not word.startswith("--"):
            return word[len(short) :]
        if word.startswith(long + "="):
            return word[len(long) + 1 :]
    return None


def _shell_script(words: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (also `-ec`, `-lc`, `su -c`), or None."""
    has_c = False
    i = 1
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word in ("--command", "-c") or (
            word[:1] in "-+" and not word.startswith("--") and "c" in word[1:] and len(word) > 1
        ):
            has_c = True
            i += 1
            continue
        if word.startswith("--command="):
            return word.partition("=")[2]
        if word in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if word[:1] in "-+" and len(word) > 1:
            i += 1
            continue
        break
    if has_c and i < len(words):
        return words[i]
    return None
