"""SQL analysis benchmark: cold `analyze` against bare `sqlglot.parse`, warm, cache memory.

Run:  python benchmarks/bench_sql.py            (both builds: sqlglotc and pure Python)
      python benchmarks/bench_sql.py --repeat 5 (five runs of both; medians of each cell)
      python benchmarks/bench_sql.py --one      (only the build this interpreter imports)
      python benchmarks/bench_sql.py --one --pure
      python benchmarks/bench_sql.py --floor --repeat 5  (what cold analysis cannot avoid)
      python benchmarks/bench_sql.py --columns --repeat 5  (cold, with and without columns)

sqlglotc installs mypyc-compiled extension modules next to sqlglot's `.py` files, and the
import system prefers extensions. `--pure` installs a finder that loads every `sqlglot.*`
module from its `.py` source instead, so the same venv measures both builds.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpora" / "sqlglot"


class _PureSqlglotFinder:
    """Finds `sqlglot` modules as `.py` sources, skipping sqlglotc's compiled extensions."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != "sqlglot" and not name.startswith("sqlglot."):
            return None
        loader = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path if path is not None else sys.path:
            spec = importlib.machinery.FileFinder(entry or ".", loader).find_spec(name)
            if spec is not None:
                return spec
        return None


AGENT_WORKLOAD = [
    "SELECT id, email, created_at FROM users WHERE id = 42",
    "SELECT * FROM orders WHERE customer_id = 7 ORDER BY created_at DESC LIMIT 20",
    "SELECT count(*) FROM events WHERE created_at > now() - interval '1 day'",
    "SELECT u.id, u.email, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100",
    "UPDATE users SET last_login = now() WHERE id = 42",
    "DELETE FROM sessions WHERE expires_at < now()",
    "INSERT INTO audit_log (actor, action, at) VALUES ('agent', 'read', now())",
    "SELECT status, count(*) AS n FROM orders GROUP BY status HAVING count(*) > 10",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > '2024-01-01') SELECT customer_id, sum(total) FROM recent GROUP BY customer_id",
    "SELECT name FROM products WHERE price BETWEEN 10 AND 20 AND category IN ('a', 'b', 'c')",
    "SELECT * FROM users WHERE email LIKE '%@example.com'",
    "BEGIN",
    "COMMIT",
    "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 500)",
    "UPDATE orders SET status = 'shipped' WHERE id = 991 AND status = 'paid'",
    "SELECT upper(email) AS shout, length(name) FROM users",
    "SELECT a.id, b.id FROM accounts a LEFT JOIN balances b ON a.id = b.account_id WHERE b.amount IS NULL",
    "EXPLAIN SELECT * FROM orders WHERE id = 1",
    "SHOW search_path",
    "SET statement_timeout = 5000",
    "SELECT coalesce(nickname, name) FROM users ORDER BY 1",
    "INSERT INTO archive SELECT * FROM orders WHERE created_at < '2020-01-01'",
    "DELETE FROM cart_items WHERE cart_id = 5 AND product_id = 9",
    "SELECT date_trunc('day', created_at) AS d, count(*) FROM events GROUP BY 1 ORDER BY 1",
    "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
    "SELECT id FROM users UNION SELECT user_id FROM orders",
    "VACUUM ANALYZE orders",
    "SELECT max(total), min(total), avg(total) FROM orders WHERE status <> 'void'",
    "UPDATE users SET email = lower(email)",
    "SELECT * FROM information_schema.tables WHERE table_schema = 'public'",
]

AGENT_SCHEMA = {
    "users": {
        "id": "int",
        "email": {"type": "text", "tags": ["pii"]},
        "name": {"type": "text", "tags": ["pii"]},
        "nickname": "text",
        "created_at": "timestamp",
        "last_login": "timestamp",
    },
    "orders": {
        "id": "int",
        "customer_id": "int",
        "user_id": "int",
        "total": "numeric",
        "status": "text",
        "created_at": "timestamp",
    },
    "events": {"id": "int", "created_at": "timestamp"},
    "products": {"name": "text", "price": "numeric", "category": "text"},
    "accounts": {"id": "int"},
    "balances": {"id": "int", "account_id": "int", "amount": "numeric"},
}


def tpch_queries() -> list[str]:
    text = (CORPUS / "tpc-h.sql").read_text()
    chunks = [c for c in re.split(r";\s*\n", text) if c.strip()]
    return chunks[0::2]


def _best_per_statement(fn: Any, texts: list[str], rounds: int, inner: int) -> float:
    """Best-of-`rounds` mean CPU seconds per statement over the workload.

    CPU time of this process, not wall time: on a shared host the wall clock also counts
    the time the process waits for a core.
    """
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(inner):
            for text in texts:
                fn(text)
        elapsed = (time.process_time() - start) / (inner * len(texts))
        best = min(best, elapsed)
    return best


def measure(pure: bool) -> dict[str, Any]:
    if pure:
        sys.meta_path.insert(0, _PureSqlglotFinder())  # type: ignore[arg-type]
    sys.path.insert(0, str(ROOT / "src"))
    import sqlglot
    import sqlglot.parser

    from subguard.sql import CACHE, analyze

    compiled = not str(sqlglot.parser.__file__).endswith(".py")
    assert compiled != pure, "the build switch did not take effect"
    tpch_schema = json.loads((CORPUS / "schemas.json").read_text())["tpch"]
    results: dict[str, Any] = {"build": "pure Python" if pure else "sqlglotc", "rows": {}}
    for label, texts, dialect, schema, inner in [
        ("agent workload (30 statements)", AGENT_WORKLOAD, "postgres", AGENT_SCHEMA, 10),
        ("TPC-H (22 queries)", tpch_queries(), None, tpch_schema, 2),
    ]:
        for text in texts:  # warm imports and per-dialect caches
            analyze(text, dialect=dialect, schema=schema)

        def parse(text: str, dialect: str | None = dialect) -> Any:
            return sqlglot.parse(text, read=dialect)

        def cold(text: str, dialect: str | None = dialect, schema: Any = schema) -> Any:
            CACHE.clear()
            return analyze(text, dialect=dialect, schema=schema)

        def warm(text: str, dialect: str | None = dialect, schema: Any = schema) -> Any:
            return analyze(text, dialect=dialect, schema=schema)

        t_parse = _best_per_statement(parse, texts, 5, inner)
        t_cold = _best_per_statement(cold, texts, 5, inner)
        for text in texts:
            warm(text)
        t_warm = _best_per_statement(warm, texts, 5, inner * 50)
        results["rows"][label] = {"parse": t_parse, "cold": t_cold, "warm": t_warm}
    results["memory"] = cache_memory(analyze, CACHE)
    return results


def cache_memory(analyze: Any, cache: Any) -> dict[str, Any]:
    """Fill the cache with distinct statements; measure its allocations against its bounds."""
    texts = [
        f"SELECT id, email FROM users_{i % 97} WHERE id = {i} AND status = 's{i}'"
        for i in range(6000)
    ]
    out: dict[str, Any] = {}
    saved = cache.max_entries, cache.max_bytes
    for label, max_entries, max_bytes in [
        ("default bounds (4096 entries, 32 MiB)", 4096, 32 * 1024 * 1024),
        ("tight bounds (10000 entries, 4 MiB)", 10000, 4 * 1024 * 1024),
    ]:
        cache.clear()
        cache.max_entries, cache.max_bytes = max_entries, max_bytes
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for text in texts:
            analyze(text, dialect="postgres")
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[label] = {
            "entries": len(cache),
            "estimate": cache.estimated_bytes,
            "measured": current - base,
            "peak": peak - base,
        }
    cache.max_entries, cache.max_bytes = saved
    cache.clear()
    return out


def _ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per run, each row with its ratios: computed within a run, as the host's load varies."""
    compiled = next((r for r in runs if r["build"] == "sqlglotc"), runs[0])
    out = []
    for run in runs:
        rows = {}
        for label, row in run["rows"].items():
            base = compiled["rows"][label]["parse"]
            rows[label] = {
                **row,
                "ratio": row["cold"] / row["parse"],
                "ratio_c": row["cold"] / base,
            }
        out.append({**run, "rows": rows})
    return out


def report(repeats: list[list[dict[str, Any]]]) -> str:
    """The table; with several repeats, every cell is the median over them."""
    lines = [
        "| build | workload | `sqlglot.parse` µs | cold `analyze` µs | cold / parse | "
        "cold / sqlglotc parse | warm `analyze` µs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    rated = [_ratios(runs) for runs in repeats]
    for i, run in enumerate(rated[0]):
        for label in run["rows"]:
            cells = [r[i]["rows"][label] for r in rated]

            def med(key: str, cells: list[dict[str, Any]] = cells) -> float:
                return statistics.median(c[key] for c in cells)

            lines.append(
                f"| {run['build']} | {label} | {med('parse') * 1e6:.0f} | "
                f"{med('cold') * 1e6:.0f} | {med('ratio'):.2f}× | "
                f"{med('ratio_c'):.2f}× | {med('warm') * 1e6:.1f} |"
            )
    compiled = next((r for r in repeats[0] if r["build"] == "sqlglotc"), repeats[0][0])
    lines += ["", "| cache bounds | entries kept | estimated bytes | measured bytes (tracemalloc) | peak |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    for label, m in compiled["memory"].items():
        lines.append(
            f"| {label} | {m['entries']} | {m['estimate'] / 2**20:.1f} MiB | "
            f"{m['measured'] / 2**20:.1f} MiB | {m['peak'] / 2**20:.1f} MiB |"
        )
    return "\n".join(lines)


def floor(repeat: int = 1) -> str:
    """Cold analysis split into the work it cannot skip, against bare `sqlglot.parse`.

    Tokenizing and parsing (with the tokenizer and parser `analyze` reuses), sqlglot's scope
    traversal with the scope facts column resolution reads, one walk of the tree, and the
    token pass behind `redacted`, `fingerprint` and `exact_hash`. What cold `analyze`
    costs beyond their sum is subguard's own Python: resolution, the steps, the records.
    With `repeat` > 1 every cell is the median over the repeats.
    """
    sys.path.insert(0, str(ROOT / "src"))
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    from subguard.sql import CACHE, analyze
    from subguard.sql._parse import parse_piece
    from subguard.sql._tokens import redacted_and_hashes, split_statements, tokenize

    tpch_schema = json.loads((CORPUS / "schemas.json").read_text())["tpch"]
    lines = [
        "| workload | `sqlglot.parse` µs | tokenize + parse µs | scopes µs | tree walk µs | "
        "token pass µs | sum µs | sum / parse | cold `analyze` µs | cold / parse |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, texts, dialect, schema, inner in [
        ("agent workload (30 statements)", AGENT_WORKLOAD, "postgres", AGENT_SCHEMA, 10),
        ("TPC-H (22 queries)", tpch_queries(), "", tpch_schema, 2),
    ]:
        for text in texts:
            analyze(text, dialect=dialect, schema=schema)
        chunks = {t: split_statements(tokenize(t, dialect)) for t in texts}
        nodes = {t: [parse_piece(c, t, dialect).node for c in chunks[t]] for t in texts}

        def tok_parse(text: str, dialect: str = dialect) -> None:
            for chunk in split_statements(tokenize(text, dialect)):
                parse_piece(chunk, text, dialect)

        def scopes(text: str, nodes: dict[str, Any] = nodes) -> None:
            for node in nodes[text]:
                if isinstance(node, (exp.Query, exp.Update, exp.Delete, exp.Merge)):
                    for scope in traverse_scope(node):
                        scope.sources, scope.columns, scope.selected_sources  # noqa: B018

        def walk(text: str, nodes: dict[str, Any] = nodes) -> None:
            for node in nodes[text]:
                if node is not None:
                    for _ in node.walk():
                        pass

        def cold(text: str, dialect: str = dialect, schema: Any = schema) -> None:
            CACHE.clear()
            analyze(text, dialect=dialect, schema=schema)

        parts = [
            ("parse", lambda text, d=dialect: sqlglot.parse(text, read=d or None)),
            ("tok_parse", tok_parse),
            ("scopes", scopes),
            ("walk", walk),
            ("tokens", lambda text, c=chunks, d=dialect: redacted_and_hashes(c[text], d)),
            ("cold", cold),
        ]
        runs = []
        for _ in range(repeat):
            t = {name: _best_per_statement(fn, texts, 7, inner) * 1e6 for name, fn in parts}
            t["sum"] = t["tok_parse"] + t["scopes"] + t["walk"] + t["tokens"]
            t["sum_ratio"] = t["sum"] / t["parse"]
            t["cold_ratio"] = t["cold"] / t["parse"]
            runs.append(t)
        m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        lines.append(
            f"| {label} | {m['parse']:.0f} | {m['tok_parse']:.0f} | {m['scopes']:.0f} | "
            f"{m['walk']:.0f} | {m['tokens']:.0f} | {m['sum']:.0f} | {m['sum_ratio']:.2f}× | "
            f"{m['cold']:.0f} | {m['cold_ratio']:.2f}× |"
        )
    return "\n".join(lines)


def identity_sample(step: int = 50) -> list[str]:
    """Every `step`-th statement of sqlglot's identity corpus (short, varied statements)."""
    lines = (CORPUS / "identity.sql").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("--")][::step]


def columns(repeat: int = 1) -> str:
    """Cold analysis with column resolution and without it (`analyze(…, columns=False)`,
    what an engine whose policy reads no column fact asks for), per statement. With
    `repeat` > 1 every cell is the median over the repeats; the ratio is taken per run."""
    sys.path.insert(0, str(ROOT / "src"))
    from subguard.sql import CACHE, analyze

    tpch_schema = json.loads((CORPUS / "schemas.json").read_text())["tpch"]
    lines = [
        "| workload | cold, with columns µs | cold, without columns µs | without / with |",
        "|---|---:|---:|---:|",
    ]
    for label, texts, dialect, schema, inner in [
        ("agent workload (30 statements)", AGENT_WORKLOAD, "postgres", AGENT_SCHEMA, 10),
        ("TPC-H (22 queries)", tpch_queries(), "", tpch_schema, 2),
        ("sqlglot identity corpus (1 in 50)", identity_sample(), "", None, 1),
    ]:
        for text in texts:
            analyze(text, dialect=dialect, schema=schema)
            analyze(text, dialect=dialect, schema=schema, columns=False)

        def cold(
            text: str, dialect: str = dialect, schema: Any = schema, with_columns: bool = True
        ) -> None:
            CACHE.clear()
            analyze(text, dialect=dialect, schema=schema, columns=with_columns)

        runs = []
        for _ in range(repeat):
            full = _best_per_statement(cold, texts, 5, inner) * 1e6
            lean = (
                _best_per_statement(lambda text: cold(text, with_columns=False), texts, 5, inner)
                * 1e6
            )
            runs.append({"full": full, "lean": lean, "ratio": lean / full})
        m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        lines.append(f"| {label} | {m['full']:.0f} | {m['lean']:.0f} | {m['ratio']:.2f}× |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", action="store_true", help="measure this process only")
    parser.add_argument("--pure", action="store_true", help="with --one: pure-Python sqlglot")
    parser.add_argument("--json", action="store_true", help="with --one: print JSON")
    parser.add_argument("--repeat", type=int, default=1, help="runs of both builds; medians")
    parser.add_argument("--floor", action="store_true", help="split cold analysis into parts")
    parser.add_argument(
        "--columns", action="store_true", help="cold analysis with and without columns"
    )
    args = parser.parse_args()
    if args.columns:
        print(columns(max(1, args.repeat)))
        return
    if args.floor:
        print(floor(max(1, args.repeat)))
        return
    if args.one:
        result = measure(args.pure)
        print(json.dumps(result) if args.json else report([[result]]))
        return
    repeats = []
    for _ in range(max(1, args.repeat)):
        runs = []
        for flag in ([], ["--pure"]):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", "--json", *flag],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            runs.append(json.loads(proc.stdout))
        repeats.append(runs)
    print(report(repeats))


if __name__ == "__main__":
    main()
