"""The SQL database command-line clients are asked to run, wherever it comes from.

`psql -c/--command` (repeatable, abbreviations too), `-f/--file` (a file: opaque, unless
it is standard input), standard input (a heredoc, a herestring, a pipe from a producer
whose output is literal); `mysql -e/--execute` and standard input; `sqlite3 DB SQL…`
and duckdb alike, with their dot-commands (`.shell`/`.system` run a command; `.read`,
`.import`, `.output`, `.load` reach files: opaque); psql meta-commands (`\\!` runs a
command, `\\copy` is a COPY, `\\d…` a read-only describe, others opaque) and mysql's
`system`/`\\!`.

SQL the analysis cannot see (a file, a pipe from an unknown producer) makes the
invocation `opaque_script`: rules hold or refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from subguard.command._options import SPECS, Spec, parse_options

__all__ = ["SQL_CLIENTS", "ClientInput", "client_input"]

SQL_CLIENTS = frozenset(
    ("psql", "mysql", "mariadb", "sqlite3", "duckdb", "clickhouse-client", "clickhouse")
)

_STDIN_PATHS = frozenset(("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"))


@attrs.frozen
class ClientInput:
    """What a client invocation runs."""

    sql: tuple[str, ...] = ()
    #: Shell scripts the client runs (`\\!`, `.shell`, `system`).
    scripts: tuple[str, ...] = ()
    #: Some SQL or command it runs is out of the analysis's sight.
    opaque: bool = False


_READ_ONLY_META = frozenset(("d", "l", "dt", "di", "ds", "dv", "dn", "df", "du", "dp", "dx", "conninfo",
                             "timing", "x", "pset", "echo", "q", "?", "h", "encoding", "a", "t",
                             "z", "sf", "sv", "lo_list", "errverbose", "c", "connect"))  # fmt: skip


def _split_meta(program: str, text: str) -> ClientInput:
    """SQL text with client meta/dot-commands taken out."""
    sql: list[str] = []
    scripts: list[str] = []
    opaque = False
    kept: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if program in ("sqlite3", "duckdb") and stripped.startswith("."):
            name, _, rest = stripped[1:].partition(" ")
            if name in ("shell", "system"):
                scripts.append(rest)
            elif name in (
                "read",
                "import",
                "output",
                "once",
                "load",
                "save",
                "restore",
                "backup",
                "open",
                "excel",
                "cd",
                "log",
                "dump",
                "clone",
                "archive",
                "ar",
                "recover",
            ):
                opaque = True
            continue
        if program in ("mysql", "mariadb") and (
            stripped.lower().startswith("system ") or stripped.startswith("\\!")
        ):
            scripts.append(stripped[2:] if stripped.startswith("\\!") else stripped[7:])
            continue
        if program == "psql" and "\\" in stripped and not stripped.startswith("--"):
            head, _, meta = line.partition("\\")
            if head.strip():
                kept.append(head)
            name = meta.split(None, 1)[0] if meta.split() else ""
            arg = meta[len(name) :].strip()
            if name == "!":
                scripts.append(arg)
            elif name == "copy":
                kept.append("COPY " + arg.rstrip(";") + ";")
            elif name.rstrip("+S") in _READ_ONLY_META or name.startswith("d"):
                pass
            elif name in ("g", "gx", "p", "r", "w", "e"):
                opaque = opaque or name in ("w", "e")
            else:  # \i, \o, \gexec, \set, \copy …: reads files, runs results, or changes state
                opaque = True
            continue
        kept.append(line)
    body = "\n".join(kept)
    if body.strip():
        sql.append(body)
    return ClientInput(tuple(sql), tuple(scripts), opaque)


def _merge(*parts: ClientInput) -> ClientInput:
    return ClientInput(
        tuple(s for p in parts for s in p.sql),
        tuple(s for p in parts for s in p.scripts),
        any(p.opaque for p in parts),
    )


def client_input(
    program: str, argv: Sequence[str], stdin_text: str | None, stdin_fed: bool
) -> ClientInput:
    """What `argv` (a client invocation) runs. `stdin_text` is its standard input when the
    analysis knows it; `stdin_fed` says whether something other than a terminal feeds it."""
    if program not in SQL_CLIENTS:
        return ClientInput()
    if program in ("sqlite3", "duckdb"):
        return _sqlite_like(program, argv, stdin_text, stdin_fed)
    spec = SPECS.get(program if program != "clickhouse" else "clickhouse-client")
    parsed = parse_options(argv, spec)
    parts: list[ClientInput] = []
    command_keys = {"psql": ("--command",), "mysql": ("--execute",), "mariadb": ("--execute",)}.get(
        program, ("--query",)
    )
    ran_command = False
    # every -c/--command given, in order (parse_options keeps only the last)
    for text in _all_values(argv, spec, command_keys):
        parts.append(_split_meta(program, text))
        ran_command = True
    files = _all_values(argv, spec, ("--file", "--queries-file"))
    for path in files:
        if path in _STDIN_PATHS:
            parts.append(_stdin(program, stdin_text, stdin_fed))
        else:
            parts.append(ClientInput(opaque=True))
    if not ran_command and not files and stdin_fed:
        parts.append(_stdin(program, stdin_text, stdin_fed))
    if "--init-command" in parsed.options:
        parts.append(_split_meta(program, parsed.options["--init-command"]))
    return _merge(*parts)


def _stdin(program: str, text: str | None, fed: bool) -> ClientInput:
    if text is None:
        return ClientInput(opaque=fed)
    return _split_meta(program, text)


def _all_values(argv: Sequence[str], spec: Spec | None, keys: tuple[str, ...]) -> list[str]:
    """Every value of the options `keys` (canonical long names), in order."""
    return [value for key, value in parse_options(argv, spec).pairs if key in keys]


_SQLITE_WITH_VALUE = frozenset(
    ("-separator", "-newline", "-nullvalue", "-init", "-vfs", "-maxsize", "-mmap", "-pagecache",
     "-escape", "-zip", "-append", "-heap", "-lookaside")
)  # fmt: skip


def _sqlite_like(
    program: str, argv: Sequence[str], stdin_text: str | None, stdin_fed: bool
) -> ClientInput:
    """`sqlite3 [OPTIONS] DB [SQL…]`; duckdb follows the same shape with `-c`."""
    sql_options = {"-cmd"} | ({"-c", "-s"} if program == "duckdb" else set())
    parts: list[ClientInput] = []
    operands: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        option = "-" + word.lstrip("-") if word.startswith("-") and len(word) > 1 else ""
        if option in sql_options:
            if i + 1 < len(argv):
                parts.append(_split_meta(program, argv[i + 1]))
            i += 2
            continue
        if option == "-init":
            parts.append(ClientInput(opaque=True))
        if option in _SQLITE_WITH_VALUE:
            i += 3 if option == "-lookaside" else 2
            continue
        if not option:
            operands.append(word)
        i += 1
    # the first operand is the database; every further one is SQL (or a dot-command)
    for text in operands[1:]:
        parts.append(_split_meta(program, text))
    if len(operands) <= 1 and stdin_fed:
        parts.append(_stdin(program, stdin_text, stdin_fed))
    return _merge(*parts)
