"""sqlglot's own fixtures (MIT, copied under tests/corpora/sqlglot) run through `analyze`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from subguard.sql import analyze

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sqlglot"
SCHEMAS = json.loads((CORPUS / "schemas.json").read_text())


def _queries(name: str) -> list[str]:
    """The input query of each (query, expected optimized query) pair in a TPC fixture."""
    text = (CORPUS / name).read_text()
    chunks = [c for c in re.split(r";\s*\n", text) if c.strip()]
    cleaned = ["\n".join(ln for ln in c.splitlines() if not ln.startswith("#")) for c in chunks]
    return cleaned[0::2]


def test_corpus_copy_has_its_license() -> None:
    assert "MIT License" in (CORPUS / "LICENSE").read_text()


def test_every_identity_statement_is_analysed_without_an_exception() -> None:
    lines = [ln for ln in (CORPUS / "identity.sql").read_text().splitlines() if ln.strip()]
    assert len(lines) > 900
    for line in lines:
        facts = analyze(line)
        assert facts.statements, line
        if facts.parse_error:
            assert facts.statements[0].kind == "unparseable"


@pytest.mark.parametrize(
    ("fixture", "schema_name", "count"), [("tpc-h.sql", "tpch", 22), ("tpc-ds.sql", "tpcds", 99)]
)
def test_every_tpc_output_column_resolves_to_source_columns(
    fixture: str, schema_name: str, count: int
) -> None:
    schema = SCHEMAS[schema_name]
    queries = _queries(fixture)
    assert len(queries) == count
    for number, query in enumerate(queries, 1):
        facts = analyze(query, schema=schema)
        assert facts.parse_error is None, number
        head = facts.statements[0]
        assert head.kind == "select"
        assert head.output_columns, number
        for out in head.output_columns:
            for src in out.sources:
                assert src.resolved and src.table is not None, (number, out.name, src)
                assert src.column in schema[src.table], (number, out.name, src)
        for col in facts.columns_read:
            assert col.resolved and col.table in schema, (number, col)
            assert col.column in schema[col.table], (number, col)
        # An output named like a base column passes that column through, so it must map to
        # it; outputs such as `count(*) AS cnt` or `'web' AS channel` derive from no column.
        all_columns = {c for cols in schema.values() for c in cols}
        root = sqlglot.parse_one(query)
        if isinstance(root, exp.Select) and len(root.selects) == len(head.output_columns):
            for sel, out in zip(root.selects, head.output_columns):
                if isinstance(sel, exp.Column) and out.name in all_columns:
                    assert any(src.column == out.name for src in out.sources), (number, out)
