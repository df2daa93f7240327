"""The MCP guard's added latency: milliseconds per `tools/call` over stdio through
`subguard mcp` (bundled rules, SQLite decision log) versus calling the same server
directly, both driven by the MCP SDK's client.

    python benchmarks/bench_mcp.py [--calls N]

Prints a Markdown table (the RESULTS.md section).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
TOOLSERVER = ROOT / "tests" / "adapters" / "mcp" / "toolserver.py"
CALLS = [
    ("query", {"sql": "SELECT id, name FROM users WHERE id = 1"}),
    ("query", {"sql": "SELECT count(*) AS n FROM users"}),
    ("run", {"command": "ls -l /tmp"}),
]


def _setup(root: Path) -> Path:
    db = root / "shop.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);"
                       "INSERT INTO users VALUES (1, 'ann', 'ann@example.org');")
    conn.commit()
    conn.close()
    return db


async def _measure(params: StdioServerParameters, n: int) -> list[float]:
    times: list[float] = []
    async with Client(params) as client:
        await client.list_tools()
        for name, args in CALLS:  # warm-up: analysis caches, the log's first commit
            await client.call_tool(name, args)
        for i in range(n):
            name, args = CALLS[i % len(CALLS)]
            start = time.perf_counter()
            result = await client.call_tool(name, args)
            times.append((time.perf_counter() - start) * 1000)
            assert not result.is_error, result
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = _setup(root)
        server = [sys.executable, str(TOOLSERVER), str(db)]
        exe = shutil.which("subguard")
        guard = [exe] if exe else [sys.executable, "-m", "subguard"]
        guard_args = ["mcp", "--rules", str(ROOT / "rules"), "--store", f"sqlite:///{root}/log.db", "--subject", "bench",
                      "--group", "agents", "--sql-tool", "query:sql", "--command-tool", "run:command", "--dialect", "sqlite", "--"]
        direct = StdioServerParameters(command=server[0], args=server[1:], env=dict(os.environ))
        guarded = StdioServerParameters(command=guard[0], args=[*guard[1:], *guard_args, *server], env=dict(os.environ))
        results: dict[str, list[float]] = {"direct": [], "guarded": []}
        for _ in range(2):  # alternate, so drift on a shared machine hits both
            results["direct"] += anyio.run(_measure, direct, options.calls // 2)
            results["guarded"] += anyio.run(_measure, guarded, options.calls // 2)
    rows = []
    for name, times in results.items():
        times.sort()
        rows.append((name, statistics.median(times), times[int(len(times) * 0.9)], times[int(len(times) * 0.99)], statistics.mean(times)))
    base = rows[0][1]
    print(f"Command: `python benchmarks/bench_mcp.py --calls {options.calls}` · Python {platform.python_version()} · "
          f"{os.cpu_count()} CPUs · {platform.system()} {platform.machine()}\n")
    print("| path | p50 ms | p90 ms | p99 ms | mean ms | p50 ÷ direct |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, p50, p90, p99, mean in rows:
        print(f"| {name} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {mean:.2f} | {p50 / base:.2f}× |")
    print(f"\nAdded per call (p50): {rows[1][1] - rows[0][1]:.2f} ms.")


if __name__ == "__main__":
    main()
