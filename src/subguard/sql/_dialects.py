"""Dialect names, their sqlglot dialect objects, and identifier case-folding per dialect."""

from __future__ import annotations

import functools
import logging
from typing import Any, Final

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

#: Names callers may pass, mapped to the dialect sqlglot reads them as ("" is generic).
DIALECT_ALIASES: Final[dict[str, str]] = {
    "": "",
    "generic": "",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "tsql": "tsql",
    "mssql": "tsql",
    "sqlserver": "tsql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "duckdb": "duckdb",
}


class UnknownDialect(ValueError):
    """A dialect name outside `DIALECT_ALIASES` (reported as a parse error, never raised out)."""


def canonical_dialect(name: str | None) -> str:
    """The canonical name for `name`; raises `UnknownDialect` for anything unsupported."""
    key = (name or "").strip().lower()
    try:
        return DIALECT_ALIASES[key]
    except KeyError:
        raise UnknownDialect(key) from None


@functools.cache
def dialect_object(name: str) -> Any:
    """The sqlglot `Dialect` instance for a canonical name (cached: building one is not free)."""
    return Dialect.get_or_raise(name or None)


@functools.lru_cache(maxsize=65536)
def normalize_name(dialect: str, name: str, quoted: bool) -> str:
    """Fold an identifier the way `dialect` resolves it: unquoted names case-fold, quoted keep.

    Delegates to sqlglot's own rule so each dialect's strategy (lowercase for postgres,
    uppercase for snowflake) matches what the database does; MySQL names are folded to
    lowercase, quoted or not (its columns are case-insensitive).
    """
    if dialect == "mysql":
        # MySQL compares column names case-insensitively whatever the quoting, and table
        # names too where `lower_case_table_names` is set; folding never splits one
        # object into two names a rule must both know.
        return name.lower()
    ident = exp.Identifier(this=name, quoted=quoted)
    return str(dialect_object(dialect).normalize_identifier(ident).name)


def normalize_identifier(dialect: str, ident: Any) -> str:
    """Normalized text of a sqlglot identifier node (or plain name node)."""
    if type(ident) is str:
        return normalize_name(dialect, ident, False)
    if isinstance(ident, exp.Identifier):
        return normalize_name(dialect, ident.this, bool(ident.quoted))
    if isinstance(ident, exp.Expr):
        return normalize_name(dialect, ident.name, False)
    return normalize_name(dialect, str(ident), False)


class _DropStatementText(logging.Filter):
    """Drops sqlglot's warnings, which quote statement text and so may carry secrets.

    sqlglot logs "contains unsupported syntax" and "Cannot traverse scope" with the raw
    statement; a proxy's log would then hold literals the decision log promises to redact.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING


_sqlglot_logger = logging.getLogger("sqlglot")
if not any(isinstance(f, _DropStatementText) for f in _sqlglot_logger.filters):
    _sqlglot_logger.addFilter(_DropStatementText())
# The filter drops those records anyway; a level above WARNING spares building them (sqlglot
# formats the statement into each one, a tenth of the cost of analysing a short command).
# A stricter level set by the application is left alone.
if _sqlglot_logger.getEffectiveLevel() < logging.ERROR:
    _sqlglot_logger.setLevel(logging.ERROR)
