"""Analyses running in several threads at once agree with the same analyses run alone.

`analyze` keeps one tokenizer and one parser per thread and dialect, and shares immutable
column facts between analyses; this checks nothing leaks from one analysis into another.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from subguard.sql._analyze import _analyse
from subguard.sql._schema import as_schema

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sqlglot"


def _cases() -> list[tuple[str, str, str | None]]:
    lines = [ln for ln in (CORPUS / "identity.sql").read_text().splitlines() if ln.strip()]
    chunks = re.split(r";\s*\n", (CORPUS / "tpc-h.sql").read_text())
    tpch = [c for c in chunks if c.strip()][0::2]
    cases = [(ln, d, None) for ln in lines[::8] for d in ("", "postgres", "mysql")]
    cases += [(q, "", "tpch") for q in tpch]
    cases += [
        ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", "postgres", None),
        ("EXPLAIN ANALYZE DELETE FROM t WHERE id IN (SELECT 1)", "postgres", None),
        ("SELECT 1 /*! ; DROP TABLE users */", "mysql", None),
        ("SELEC * FRM x", "", None),
    ]
    return cases


def test_concurrent_analyses_match_sequential_ones() -> None:
    schemas = {"tpch": as_schema(json.loads((CORPUS / "schemas.json").read_text())["tpch"], "")}
    cases = _cases()

    def run(case: tuple[str, str, str | None]) -> object:
        text, dialect, schema = case
        return _analyse(text, dialect, schemas[schema] if schema else None)

    expected = [run(c) for c in cases]
    step = len(cases) // 6

    def run_all(start: int) -> list[tuple[int, object]]:
        # Each worker takes every case, starting at a different one, so analyses interleave.
        order = list(range(start, len(cases))) + list(range(start))
        return [(i, run(cases[i])) for i in order]

    with ThreadPoolExecutor(max_workers=6) as pool:
        for results in pool.map(run_all, [k * step for k in range(6)]):
            for i, facts in results:
                assert facts == expected[i], cases[i][0]
