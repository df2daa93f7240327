"""What the DB-API gate adds to a statement: sqlite3 point SELECT, direct vs guarded.

    python benchmarks/bench_gate.py [--n 3000]

Direct: `raw.execute(SQL, (id,)).fetchone()` on an in-memory SQLite table of 1,000 rows.
Guarded: the same through `subguard.adapters.dbapi.guard` with a four-rule policy, once
over the memory decision log and once over the durable SQLite log (a file in a temporary
directory). The statement's shape repeats (the id varies as a parameter), as an agent's
queries do, so the analysis is cached after the first. Each call is timed alone with
`perf_counter_ns`; the first 200 calls of each row warm up and are not counted.

"added per execute" is the guarded p50 minus the direct p50 (the memory log's follower
thread polls in the background, so process CPU time would count it too: wall time on one
thread is the honest measure here). The durable row is compared with the store's bare
commit (a durable one-row WAL commit on the same disk, just before and just after).

The write rows time a guarded `UPDATE … WHERE id = ?` (memory log) under the same policy
with one more rule, which reads `estimated_rows` (so the adapter counts the WHERE's rows
before deciding: "estimate on"), against the policy without it ("estimate off").
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import subguard
from subguard.adapters import dbapi
from subguard.log import open_log

SQL = "SELECT id, name, total FROM accounts WHERE id = ?"
WRITE = "UPDATE accounts SET total = total + 1 WHERE id = ?"

#: The rule that makes the adapter estimate writes (the bundled unbounded-writes rule).
ESTIMATE_RULE = """
approve contains "big write" if {
    some s in statements
    is_number(s.estimated_rows)
    s.estimated_rows > 1000
}
"""

POLICY = """package bench.gate

import input.sql.statements

deny contains "DROP is never allowed" if {
    some s in statements
    s.kind == "drop"
}

approve contains "unbounded write" if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
}

mask contains {"table": c.table, "column": c.column} if {
    some c in input.sql.columns_read
    "pii" in c.tags
    c.in_output
}

default allow := true
"""


def database() -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, email TEXT, total REAL)")
    raw.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?, ?)",
        [(i, f"name-{i}", f"user{i}@example.com", i * 1.5) for i in range(1, 1001)],
    )
    raw.commit()
    return raw


def timed(call: Callable[[int], Any], n: int, warmup: int = 200) -> list[int]:
    for i in range(warmup):
        call(i % 1000 + 1)
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        call(i % 1000 + 1)
        out.append(time.perf_counter_ns() - t0)
    return sorted(out)


def pct(values: list[int], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] / 1000


def bare_commit_us(tmp: str, n: int = 60) -> float:
    path = os.path.join(tmp, f"probe-{uuid.uuid4().hex}.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (a BLOB)")
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 600,))
        times.append(time.perf_counter_ns() - t0)
    conn.close()
    return sorted(times)[len(times) // 2] / 1000


def guarded_call(policy: subguard.Policy, url: str, sql: str = SQL) -> tuple[Callable[[int], Any], Any]:
    log = open_log(url)
    engine = subguard.Engine(policy, log=log)
    conn = dbapi.guard(
        database(), engine, subject="bench-agent", resource={"name": "bench", "kind": "sqlite"},
        session=f"bench-{uuid.uuid4().hex[:8]}", tags={"accounts.email": ["pii"]},
    )
    return (lambda i: conn.execute(sql, (i,)).fetchone()), log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000, help="timed calls per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = Path(tmp) / "policy"
        policy_dir.mkdir()
        (policy_dir / "bench.guard").write_text(POLICY)
        policy = subguard.load_policy(policy_dir)
        estimate_dir = Path(tmp) / "policy-estimate"
        estimate_dir.mkdir()
        (estimate_dir / "bench.guard").write_text(POLICY + ESTIMATE_RULE)
        estimating = subguard.load_policy(estimate_dir)

        write_raw = database()
        write_direct = timed(lambda i: write_raw.execute(WRITE, (i,)).fetchone(), args.n)
        off_call, off_log = guarded_call(policy, "memory://", WRITE)
        write_off = timed(off_call, args.n)
        off_log.close()
        on_call, on_log = guarded_call(estimating, "memory://", WRITE)
        write_on = timed(on_call, args.n)
        on_log.close()

        raw = database()
        direct = timed(lambda i: raw.execute(SQL, (i,)).fetchone(), args.n)

        memory_call, memory_log = guarded_call(policy, "memory://")
        memory = timed(memory_call, args.n)
        memory_log.close()

        # The decision alone (analysis cached, rules, the memory log's record) with the
        # same arguments the gate passes: what is left is the wrapper's own cost.
        check_log = open_log("memory://")
        check_engine = subguard.Engine(policy, log=check_log)
        request = subguard.SqlRequest(SQL, "sqlite")
        subject = subguard.Subject("bench-agent")
        resource = subguard.Resource(name="bench", kind="sqlite", schema={"accounts": {"id": "integer", "name": "text", "email": {"type": "text", "tags": ["pii"]}, "total": "real"}})
        check_only = timed(
            lambda i: (check_engine.check(request, subject=subject, resource=resource, session="bench-check"), raw.execute(SQL, (i,)).fetchone()),
            args.n,
        )
        check_log.close()

        before = bare_commit_us(tmp)
        durable_call, durable_log = guarded_call(policy, f"sqlite:///{tmp}/log.db")
        durable = timed(durable_call, max(args.n // 3, 300))
        durable_log.close()
        after = bare_commit_us(tmp)

    bare = max(before, after)
    added = pct(memory, 0.5) - pct(direct, 0.5)
    durable_over = pct(durable, 0.5) - bare
    print(
        f"Command: `python benchmarks/bench_gate.py --n {args.n}` · Python {platform.python_version()} · "
        f"{os.cpu_count()} CPUs · {platform.system()} {platform.machine()}"
    )
    print()
    print(f"`{SQL}` (id varies as a parameter), in-memory SQLite, 1,000 rows.")
    print()
    print("| path | p50 µs | p90 µs | p99 µs | added p50 µs vs direct |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ("direct sqlite3", direct),
        ("Engine.check (memory log) + direct, no wrapper", check_only),
        ("guarded, memory log", memory),
        ("guarded, SQLite durable log", durable),
    ]
    for name, values in rows:
        extra = "" if values is direct else f"{pct(values, 0.5) - pct(direct, 0.5):.1f}"
        print(f"| {name} | {pct(values, 0.5):.1f} | {pct(values, 0.9):.1f} | {pct(values, 0.99):.1f} | {extra} |")
    print()
    print(f"`{WRITE}` (id varies), memory log: the estimate is a bounded count of the WHERE's rows.")
    print()
    print("| path | p50 µs | p90 µs | p99 µs | added p50 µs vs estimate off |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("direct sqlite3 UPDATE", write_direct), ("guarded UPDATE, estimate off", write_off), ("guarded UPDATE, estimate on", write_on)):
        extra = f"{pct(values, 0.5) - pct(write_off, 0.5):.1f}" if values is write_on else ""
        print(f"| {name} | {pct(values, 0.5):.1f} | {pct(values, 0.9):.1f} | {pct(values, 0.99):.1f} | {extra} |")
    print()
    print(f"Bare durable commit on the same disk (p50, before / after the durable row): {before:.0f} / {after:.0f} µs.")
    print()
    print("| target | measured | |")
    print("|---|---:|---|")
    print(f"| added per execute ≤ 30 µs (memory log, repeated shape) | {added:.1f} µs | {'met' if added <= 30 else '**not met**'} |")
    print(
        f"| durable p50 ≤ bare commit + 100 µs | {pct(durable, 0.5):.0f} µs = bare {bare:.0f} + {durable_over:.0f} µs | "
        f"{'met' if durable_over <= 100 else '**not met**'} |"
    )


if __name__ == "__main__":
    main()
