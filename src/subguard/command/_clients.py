"""Find the SQL that database command-line clients are asked to run (`psql -c …`).

Only SQL given on the command line is found; scripts read from files or heredocs are out
of reach of a command-line analysis, and rules should treat such clients as opaque.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["sql_texts"]


def _getopt(
    argv: Sequence[str],
    *,
    sql: str,
    sql_long: tuple[str, ...],
    takes_value: str,
    optional_value: str = "",
    long_with_value: tuple[str, ...] = (),
) -> list[str]:
    """Scan GNU-getopt style options and return the values of the SQL option.

    `takes_value` lists short options whose value follows (attached or as the next
    word), `optional_value` those whose value can only be attached (mysql's `-p`).
    """
    found: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name in sql_long:
                if eq:
                    found.append(value)
                elif i + 1 < len(argv):
                    found.append(argv[i + 1])
                    i += 1
            elif name in long_with_value and not eq:
                i += 1
        elif word.startswith("-") and len(word) > 1:
            for j, flag in enumerate(word[1:], start=1):
                rest = word[j + 1 :]
                if flag == sql or flag in takes_value:
                    value = rest
                    if not rest and i + 1 < len(argv):
                        value = argv[i + 1]
                        i += 1
                    if flag == sql:
                        found.append(value)
                    break
                if flag in optional_value:
                    break
        i += 1
    return found


def _psql(argv: Sequence[str]) -> list[str]:
    return _getopt(
        argv,
        sql="c",
        sql_long=("--command",),
        takes_value="dfFhLoPpRTUv",
        long_with_value=(
            "--dbname", "--file", "--field-separator", "--host", "--log-file", "--output",
            "--port", "--pset", "--record-separator", "--table-attr", "--username",
            "--set", "--variable",
        ),
    )  # fmt: skip


def _mysql(argv: Sequence[str]) -> list[str]:
    return _getopt(
        argv,
        sql="e",
        sql_long=("--execute",),
        takes_value="DhPSuO",
        optional_value="p",
        long_with_value=("--database", "--host", "--port", "--socket", "--user"),
    )


def _clickhouse(argv: Sequence[str]) -> list[str]:
    return _getopt(
        argv,
        sql="q",
        sql_long=("--query",),
        takes_value="hdu",
        long_with_value=("--host", "--port", "--user", "--password", "--database"),
    )


# sqlite3 and duckdb take single-dash long options; these are the ones with a value.
_SQLITE_WITH_VALUE = frozenset(
    ("-separator", "-newline", "-nullvalue", "-init", "-vfs", "-maxsize", "-mmap", "-pagecache",
     "-escape", "-zip", "-append")
)  # fmt: skip
_SQLITE_LOOKASIDE = "-lookaside"  # takes two values


def _sqlite_like(argv: Sequence[str], sql_options: frozenset[str]) -> list[str]:
    """`sqlite3 [OPTIONS] DB [SQL…]`; duckdb follows the same shape with `-c`."""
    found: list[str] = []
    operands: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        option = "-" + word.lstrip("-") if word.startswith("-") and len(word) > 1 else ""
        if option in sql_options:
            if i + 1 < len(argv):
                found.append(argv[i + 1])
            i += 2
            continue
        if option in _SQLITE_WITH_VALUE:
            i += 2
            continue
        if option == _SQLITE_LOOKASIDE:
            i += 3
            continue
        if not option:
            operands.append(word)
        i += 1
    # the first operand is the database; every further one is SQL (or a dot-command)
    found.extend(operands[1:])
    return [text for text in found if text.strip() and not text.lstrip().startswith(".")]


def _sqlite3(argv: Sequence[str]) -> list[str]:
    return _sqlite_like(argv, frozenset(("-cmd",)))


def _duckdb(argv: Sequence[str]) -> list[str]:
    return _sqlite_like(argv, frozenset(("-c", "-s", "-cmd")))


_CLIENTS: dict[str, Callable[[Sequence[str]], list[str]]] = {
    "psql": _psql,
    "mysql": _mysql,
    "mariadb": _mysql,
    "sqlite3": _sqlite3,
    "duckdb": _duckdb,
    "clickhouse-client": _clickhouse,
}


def sql_texts(program: str, argv: Sequence[str]) -> list[str]:
    """SQL that `argv` (an invocation of `program`) hands to a database client."""
    client = _CLIENTS.get(program)
    return client(argv) if client is not None else []
