"""SQL analysis for subguard: text in, the `input.sql` facts that policy rules decide on.

`analyze` never raises: text that is not a statement, does not parse, or names an
unknown dialect yields `parse_error` and an `unparseable` statement so rules fail closed.
"""

from subguard.sql._analyze import CACHE, analyze, fingerprint, redact
from subguard.sql._cache import LRUCache
from subguard.sql._dialects import DIALECT_ALIASES
from subguard.sql._estimate import CountQuery, count_query
from subguard.sql._facts import (
    Column,
    ColumnFlow,
    Grant,
    OutputColumn,
    SqlFacts,
    Statement,
    Table,
)
from subguard.sql._kinds import KINDS
from subguard.sql._lineage import OutputLineage, ResultLineage, output_lineage
from subguard.sql._schema import Schema, schema_tagged, validate_schema

__all__ = [
    "CACHE",
    "DIALECT_ALIASES",
    "KINDS",
    "Column",
    "ColumnFlow",
    "CountQuery",
    "Grant",
    "LRUCache",
    "OutputColumn",
    "OutputLineage",
    "ResultLineage",
    "Schema",
    "SqlFacts",
    "Statement",
    "Table",
    "analyze",
    "count_query",
    "fingerprint",
    "output_lineage",
    "redact",
    "schema_tagged",
    "validate_schema",
]
