"""Decision log throughput and latency: memory, SQLite and PostgreSQL side by side.

    python benchmarks/bench_log.py [--seconds 3] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Measures what the log adds to every `check` (preflight `before` + durable `record`), with
1 and 8 threads, with and without group commit, and the batch path `record_many` that
`subguard eval --batch --store` uses. When `subguard.Engine` exists it also measures
`Engine.check` end to end with a two-rule policy. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from subguard.engine.recorder import CheckContext
from subguard.engine.types import Decision, Effect, Reason, Resource, SqlRequest, Subject
from subguard.log import open_log

SUBJECT = Subject("agent-1", groups=("agents",))
RESOURCE = Resource("prod-db", kind="postgres", env="prod")
INPUT = {
    "sql": {
        "statements": [{"kind": "select"}],
        "tables_read": frozenset({"orders"}),
        "tables_written": frozenset(),
        "columns_read": [{"table": "orders", "column": "total"}],
    }
}
REASON = Reason(Effect.ALLOW, "guard.bench", "allow", "agents may read", "bench.guard:3")


def ctx(session: str) -> CheckContext:
    return CheckContext(
        request=SqlRequest("SELECT total FROM orders WHERE id = 42"),
        subject=SUBJECT,
        resource=RESOURCE,
        session_id=session,
        request_kind="sql",
        redacted_text="SELECT total FROM orders WHERE id = ?",
        fingerprint="4f2a9c",
        exact_hash="77d1e0",
        time_ns=time.time_ns(),
    )


def decision() -> Decision:
    return Decision(
        effect=Effect.ALLOW,
        reasons=(REASON,),
        input=INPUT,
        policy_hash="sha256:bench",
        elapsed_ns=5000,
    )


def run_threads(
    threads: int, seconds: float, op: Callable[[int], None]
) -> tuple[float, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds
    start_barrier = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        start_barrier.wait()
        out = latencies[k]
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            op(k)
            out.append(time.perf_counter() - t0)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    t0 = time.monotonic()
    start_barrier.wait()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - t0
    flat = [x for part in latencies for x in part]
    return len(flat) / elapsed, flat


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1e3 if values else float("nan")


def bare_commit(store: str, tmp: str, postgres: str, n: int = 40) -> float | None:
    """p50 seconds of one durable one-row commit on this store, no subguard involved.

    The disk's floor at that moment: a closed-loop caller waits for its own commit, so
    `threads / this` bounds what any group commit can reach with that many threads.
    None for the memory store (or when PostgreSQL is unreachable)."""
    times = []
    if store == "sqlite":
        import sqlite3

        path = os.path.join(tmp, f"probe-{uuid.uuid4().hex}.db")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (a BLOB)")
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 600,))
            times.append(time.perf_counter() - t0)
        conn.close()
    elif store == "postgres":
        try:
            import psycopg

            table = "probe_" + uuid.uuid4().hex[:8]  # a logged table: temp tables skip the WAL
            with psycopg.connect(postgres, autocommit=True) as pg:
                pg.execute(f"CREATE TABLE {table} (a bytea)")
                try:
                    for _ in range(n):
                        t0 = time.perf_counter()
                        pg.execute(f"INSERT INTO {table} VALUES (%s)", (b"x" * 600,))
                        times.append(time.perf_counter() - t0)
                finally:
                    pg.execute(f"DROP TABLE {table}")
        except Exception:
            return None
    return sorted(times)[len(times) // 2] if times else None


class Disk:
    """Probes the store's bare commit around a scenario: `with disk: …`, then `str(disk)`."""

    def __init__(self, store: str, tmp: str, postgres: str) -> None:
        self.args = (store, tmp, postgres)
        self.before: float | None = None
        self.after: float | None = None

    def __enter__(self) -> Disk:
        self.before = bare_commit(*self.args)
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = bare_commit(*self.args)

    def __str__(self) -> str:
        if self.before is None or self.after is None:
            return ""
        return f"{self.before * 1e3:.2f} / {self.after * 1e3:.2f}"


def check_op(log: Any) -> Callable[[int], None]:
    def op(k: int) -> None:
        c = ctx(f"bench-{k}")
        log.before(c)
        log.record(c, decision())

    return op


def engine_op(engine: Any) -> Callable[[int], None]:
    request = SqlRequest("SELECT total FROM orders WHERE id = 42")

    def op(k: int) -> None:
        engine.check(request, subject=SUBJECT, resource=RESOURCE, session=f"bench-{k}")

    return op


def make_engine(log: Any) -> Any:
    try:
        import subguard
    except ImportError:
        return None
    load_policy = getattr(subguard, "load_policy", None)
    engine_cls = getattr(subguard, "Engine", None)
    if load_policy is None or engine_cls is None:
        return None
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "bench.guard")
    with open(path, "w") as f:
        f.write(
            'package guard.bench\n\ndeny contains "drop" if {\n    some s in input.sql.statements\n    s.kind == "drop"\n}\n\ndefault allow := true\n'
        )
    return engine_cls(load_policy([path]), log=log)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--eval-lines", type=int, default=10000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    schema = "bench_" + uuid.uuid4().hex[:8]
    stores = {
        "memory": lambda: "memory://",  # unnamed: not kept after the log closes
        "sqlite": lambda: f"sqlite:///{tmp}/{uuid.uuid4().hex}.db",
        "postgres": lambda: f"{args.postgres}?schema={schema}",
    }
    rows: list[tuple[str, ...]] = []
    mem_rate: dict[int, float] = {}
    for name, url_of in stores.items():
        for threads in (1, 8):
            for group in (True, False):
                url = url_of()
                log = open_log(url, create=True, group_commit=group)
                try:
                    run_threads(threads, 0.3, check_op(log))  # warm up
                    with Disk(name, tmp, args.postgres) as disk:
                        rate, lat = run_threads(threads, args.seconds, check_op(log))
                finally:
                    log.close()
                if name == "memory" and group:
                    mem_rate[threads] = rate
                ratio = mem_rate.get(threads, rate) / rate if rate else float("nan")
                rows.append(
                    (
                        name,
                        "before+record",
                        str(threads),
                        "on" if group else "off",
                        f"{rate:,.0f}",
                        f"{pct(lat, 0.5):.3f}",
                        f"{pct(lat, 0.99):.3f}",
                        f"{ratio:.2f}×" if name != "memory" else "1.00×",
                        str(disk),
                    )
                )
                print(" | ".join(rows[-1]), file=sys.stderr)
        # the batch path (`eval --batch --store`): record_many, one transaction per batch
        url = url_of()
        log = open_log(url, create=True)
        try:
            items = [(ctx(f"batch-{i % 16}"), decision()) for i in range(args.batch)]
            log.record_many(items)
            with Disk(name, tmp, args.postgres) as disk:
                count, t0 = 0, time.monotonic()
                lat = []
                while time.monotonic() - t0 < args.seconds:
                    items = [(ctx(f"batch-{i % 16}"), decision()) for i in range(args.batch)]
                    t1 = time.perf_counter()
                    log.record_many(items)
                    lat.append(time.perf_counter() - t1)
                    count += len(items)
                rate = count / (time.monotonic() - t0)
        finally:
            log.close()
        rows.append(
            (
                name,
                f"record_many ×{args.batch}",
                "1",
                "batch",
                f"{rate:,.0f}",
                f"{pct(lat, 0.5):.1f} / batch",
                f"{pct(lat, 0.99):.1f} / batch",
                "",
                str(disk),
            )
        )
        print(" | ".join(rows[-1]), file=sys.stderr)
        engine = make_engine(None)
        if engine is not None:
            for threads in (1, 8):
                log = open_log(url_of(), create=True)
                engine = make_engine(log)
                try:
                    run_threads(threads, 0.3, engine_op(engine))
                    with Disk(name, tmp, args.postgres) as disk:
                        rate, lat = run_threads(threads, args.seconds, engine_op(engine))
                finally:
                    log.close()
                rows.append(
                    (
                        name,
                        "Engine.check",
                        str(threads),
                        "on",
                        f"{rate:,.0f}",
                        f"{pct(lat, 0.5):.3f}",
                        f"{pct(lat, 0.99):.3f}",
                        "",
                        str(disk),
                    )
                )
                print(" | ".join(rows[-1]), file=sys.stderr)
    eval_rows = bench_eval_batch(tmp, args.eval_lines, stores, args.postgres)
    try:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:
        pass
    print(
        "bare commit: p50 ms of a durable one-row commit on the same store just before / "
        "just after the row's run (the disk's floor then; N closed-loop threads cannot "
        "exceed N ÷ that commit time)"
    )
    print()
    print(
        "| store | path | threads | group commit | decisions/s | p50 ms | p99 ms | memory ÷ this "
        "| bare commit ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if eval_rows:
        print()
        print(
            f"`subguard eval --batch` ({args.eval_lines:,} lines, in process, output to /dev/null):"
        )
        print()
        print("| store | lines | seconds | decisions/s | bare commit ms |")
        print("|---|---|---|---|---|")
        for row in eval_rows:
            print("| " + " | ".join(row) + " |")


def bench_eval_batch(
    tmp: str, lines: int, stores: dict[str, Callable[[], str]], postgres: str
) -> list[tuple[str, ...]]:
    """`subguard eval --batch` end to end (analysis + rules + log) with each store."""
    try:
        from subguard.cli import main as cli_main
    except ImportError:
        return []
    import contextlib
    import io

    import orjson

    rules = os.path.join(tmp, "eval.guard")
    with open(rules, "w") as f:
        f.write(
            'package guard.bench\n\ndeny contains "drop" if {\n    some s in input.sql.statements\n    s.kind == "drop"\n}\n\ndefault allow := true\n'
        )
    out: list[tuple[str, ...]] = []
    for shape, make in (
        ("one shape", lambda i: f"SELECT total FROM orders WHERE id = {i}"),
        ("repeated text", lambda i: "SELECT total FROM orders WHERE id = 42"),
    ):
        batch = os.path.join(tmp, "batch.jsonl")
        with open(batch, "wb") as f:
            for i in range(lines):
                f.write(
                    orjson.dumps({"sql": make(i), "subject": "agent", "session": f"s{i % 16}"})
                    + b"\n"
                )
        for name in ("warm-up", "none", *stores):
            argv = ["eval", "--rules", rules, "--batch", batch, "--format", "jsonl"]
            if name not in ("none", "warm-up"):
                argv += ["--store", stores[name]()]
            sink = io.StringIO()
            with Disk(name, tmp, postgres) as disk:
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(sink), contextlib.suppress(SystemExit):
                    cli_main.main(argv, standalone_mode=False)
                elapsed = time.perf_counter() - t0
            if name == "warm-up":
                continue
            out.append(
                (
                    f"{name} ({shape})",
                    f"{lines:,}",
                    f"{elapsed:.2f}",
                    f"{lines / elapsed:,.0f}",
                    str(disk),
                )
            )
            print(" | ".join(out[-1]), file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
