"""The PostgreSQL proxy under pgbench -S: subguard (durable SQLite log, and memory log)
vs pgbouncer (session pooling) vs direct, alternated in one run.

    python benchmarks/bench_proxy.py [--seconds 10] [--rounds 2] [--clients 8] [--write]

Needs the PostgreSQL server on 127.0.0.1:5432 (database `test`, trust), pgbench and
pgbouncer (Debian package `pgbouncer`). pgbench -S sends
`SELECT abalance FROM pgbench_accounts WHERE aid = N`: in the simple protocol the literal
changes every time, so every statement is analysed, decided and logged afresh; in the
prepared protocol it is decided once at Parse and each Bind/Execute reuses the decision.
Each target runs `--rounds` times in rotated order; the table keeps the median TPS.
The one-client latency is pgbench's per-transaction log (`-l`), p50.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import jwt

PG = ("127.0.0.1", 5432)
SECRET = "bench-secret-" + "b" * 40

POLICY = """package bench.proxy

import input.sql.statements

deny contains msg if {
    some s in statements
    s.kind in {"drop", "truncate"}
    msg := sprintf("%s is never allowed", [upper(s.kind)])
}

deny contains "unparseable SQL" if {
    some s in statements
    s.kind == "unparseable"
}

approve contains "unbounded write" if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
}

mask contains sprintf("%s.%s", [c.table, c.column]) if {
    some c in input.sql.columns_read
    c.in_output
    "pii" in c.tags
}

default allow := true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"{what} exited: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def start_subguard(tmp: Path, store: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    (tmp / "bench.guard").write_text(POLICY)
    (tmp / "jwt.secret").write_text(SECRET)
    exe = shutil.which("subguard")
    command = [exe] if exe else [sys.executable, "-m", "subguard"]
    process = subprocess.Popen(
        [
            *command,
            "proxy",
            "postgres",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            f"postgresql://postgres@{PG[0]}:{PG[1]}/test",
            "--rules",
            str(tmp / "bench.guard"),
            "--jwt-secret-file",
            str(tmp / "jwt.secret"),
            "--store",
            store,
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_port(port, process, "subguard")
    return port, process


def start_pgbouncer(tmp: Path) -> tuple[int, subprocess.Popen[bytes]]:
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    port = free_port()
    d = tmp / "pgbouncer"
    d.mkdir()
    (d / "userlist.txt").write_text('"postgres" ""\n')
    (d / "pgbouncer.ini").write_text(
        f"""[databases]
test = host={PG[0]} port={PG[1]} dbname=test user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {d}/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = {d}/pgbouncer.log
pidfile = {d}/pgbouncer.pid
"""
    )
    os.chmod(tmp, 0o711)  # pgbouncer runs as `nobody` when started by root
    os.chmod(d, 0o777)
    for f in d.iterdir():
        os.chmod(f, 0o666)
    command = [exe, str(d / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command = [exe, "-u", "nobody", str(d / "pgbouncer.ini")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, process, "pgbouncer")
    return port, process


def pgbench(
    port: int,
    password: str | None,
    *,
    mode: str,
    clients: int,
    seconds: float,
    log_dir: Path | None = None,
) -> tuple[float, list[float]]:
    env = {**os.environ}
    if password is not None:
        env["PGPASSWORD"] = password
    args = [
        "pgbench",
        "-n",
        "-S",
        "-M",
        mode,
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-T",
        str(int(seconds)),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "postgres",
        "test",
    ]
    if log_dir is not None:
        args[1:1] = ["-l", "--log-prefix", str(log_dir / "pgbench_log")]
    done = subprocess.run(
        args, capture_output=True, text=True, env=env, check=False, cwd=log_dir or None
    )
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed on port {port}: {done.stderr}")
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    latencies: list[float] = []
    if log_dir is not None:
        for f in log_dir.glob("pgbench_log*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(float(parts[2]))
            f.unlink()
    return tps, latencies


def event_loop() -> str:
    """The proxy's event loop: uvloop when installed (the `proxy` extra), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return "event loop: asyncio's own (uvloop not installed)"
    return f"event loop: uvloop {uvloop.__version__}"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used (Linux `/proc`); 0 for None."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_commit_us(tmp: Path, n: int = 60) -> float:
    path = tmp / f"probe-{uuid.uuid4().hex}.db"
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


def decision_parts(tmp: Path) -> dict[str, float]:
    """p50 µs of the pieces one simple-protocol statement costs inside the proxy."""
    import random

    import subguard
    from subguard.log import open_log
    from subguard.sql import analyze

    policy = subguard.load_policy([str(tmp / "bench.guard")])
    out: dict[str, float] = {}

    def text() -> str:
        return f"SELECT abalance FROM pgbench_accounts WHERE aid = {random.randint(1, 10**6)};"

    def p50(fn: object, n: int = 400) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter_ns() - t0)
        return sorted(times)[n // 2] / 1000

    out["analysis, new literal"] = p50(lambda: analyze(text(), dialect="postgres"))
    same = text()
    analyze(same, dialect="postgres")
    out["analysis, cached text"] = p50(lambda: analyze(same, dialect="postgres"))
    for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/parts.db")):
        with open_log(url) as log:
            engine = subguard.Engine(policy, log=log)
            resource = subguard.Resource(name="test", kind="postgres", dialect="postgres")

            def check(
                sql: str, engine: subguard.Engine = engine, resource: subguard.Resource = resource
            ) -> None:
                engine.check(
                    subguard.SqlRequest(sql, "postgres"),
                    subject="b",
                    resource=resource,
                    session="s",
                )

            out[f"Engine.check, cached text, {name} log"] = p50(lambda: check(same))
            out[f"Engine.check, new literal, {name} log"] = p50(lambda: check(text()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--write", action="store_true", help="replace this benchmark's section of RESULTS.md"
    )
    args = parser.parse_args()
    subprocess.run(
        [
            "pgbench",
            "-i",
            "-q",
            "-s",
            "10",
            "-h",
            PG[0],
            "-p",
            str(PG[1]),
            "-U",
            "postgres",
            "test",
        ],
        check=True,
        capture_output=True,
    )
    token = jwt.encode(
        {"sub": "bench", "groups": ["agents"], "exp": int(time.time()) + 86400},
        SECRET,
        algorithm="HS256",
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "mem").mkdir()
        (tmp / "dur").mkdir()
        bouncer_port, bouncer = start_pgbouncer(tmp)
        durable_port, durable = start_subguard(tmp / "dur", f"sqlite:///{tmp}/dur/log.db")
        memory_port, memory = start_subguard(tmp / "mem", "memory://")
        targets = {
            "direct": (PG[1], None),
            "pgbouncer (session pooling)": (bouncer_port, None),
            "subguard, durable SQLite log": (durable_port, token),
            "subguard, memory log": (memory_port, token),
        }
        pids = {
            "pgbouncer (session pooling)": bouncer.pid,
            "subguard, durable SQLite log": durable.pid,
            "subguard, memory log": memory.pid,
        }
        cpu: dict[tuple[str, str], list[float]] = {}
        tps: dict[tuple[str, str], list[float]] = {}
        latency: dict[str, float] = {}
        try:
            names = list(targets)
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for mode in ("simple", "prepared"):
                    for name in order:
                        port, password = targets[name]
                        used = cpu_seconds(pids.get(name))
                        got, _ = pgbench(
                            port, password, mode=mode, clients=args.clients, seconds=args.seconds
                        )
                        used = cpu_seconds(pids.get(name)) - used
                        tps.setdefault((name, mode), []).append(got)
                        print(f"round {r + 1} {mode:8} {name:32} {got:10.0f} tps", flush=True)
                        if name in pids:  # the middle process's CPU per statement (pgbench's
                            # TPS is over -T seconds); direct has no middle process
                            cpu.setdefault((name, mode), []).append(
                                used / (got * int(args.seconds)) * 1e6
                            )
            for name in names:
                port, password = targets[name]
                with tempfile.TemporaryDirectory() as logs:
                    _, lat = pgbench(
                        port,
                        password,
                        mode="simple",
                        clients=1,
                        seconds=max(args.seconds / 2, 3),
                        log_dir=Path(logs),
                    )
                latency[name] = statistics.median(lat)
                print(f"1 client simple {name:32} p50 {latency[name]:.0f} µs", flush=True)
        finally:
            for p in (bouncer, durable, memory):
                p.terminate()
                p.wait(10)
        bare = bare_commit_us(tmp)
        parts = decision_parts(tmp / "dur")
    report(args, tps, cpu, latency, bare, parts)


def gap(cpu: dict[tuple[str, str], list[float]], parts: dict[str, float], bare: float) -> list[str]:
    """Where the gap to pgbouncer goes, from the CPU the middle processes used."""
    memory = {
        m: statistics.median(cpu[("subguard, memory log", m)]) for m in ("simple", "prepared")
    }
    durable = {
        m: statistics.median(cpu[("subguard, durable SQLite log", m)])
        for m in ("simple", "prepared")
    }
    bouncer = statistics.median(cpu[("pgbouncer (session pooling)", "simple")])
    decision = memory["simple"] - memory["prepared"]
    return [
        "Where the gap to pgbouncer goes, from the CPU each middle process used per statement (the table's last "
        "column; user + system time, so the socket system calls are in it). pgbouncer relays a simple-protocol "
        f"statement for {bouncer:,.0f} µs of CPU. The proxy's framing alone, measured where nothing is decided per "
        f"statement (prepared: decided once at Parse), costs {memory['prepared']:,.0f} µs: reading and cutting "
        "messages, matching responses to what is owed, asyncio's streams and two socket writes each way, in Python. "
        f"A fresh decision adds {decision:,.0f} µs on the memory log (simple minus prepared): pgbench's literal "
        "changes every statement, so each one is analysed (the shape cache serves the facts after tokenizing, "
        f"hashing and redacting the new text: {parts['analysis, new literal']:,.0f} µs p50 alone), evaluated and "
        "recorded; an identical text, the cheapest case, still costs "
        f"{parts['Engine.check, cached text, memory log']:,.0f} µs of `Engine.check` with the memory log. The durable log "
        f"costs {durable['simple'] - memory['simple']:,.0f} µs more per statement in this process (the writer thread's "
        f"encoding and SQLite insert; its commits are batched across sessions, and the bare durable commit here takes {bare:,.0f} µs). "
        "The proxy decides in the event loop, as one batch for every session's waiting statements, and commits each "
        "batch on one writer thread: no thread switch per statement. With the interpreter's CPU per statement "
        "several times pgbouncer's, on two cores shared with pgbench and the server, the ratio is set by that CPU.",
    ]


def report(
    args: argparse.Namespace,
    tps: dict[tuple[str, str], list[float]],
    cpu: dict[tuple[str, str], list[float]],
    latency: dict[str, float],
    bare: float,
    parts: dict[str, float],
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = os.getloadavg()[0]
    lines = [
        "## PostgreSQL proxy (issue 14)",
        "",
        f"Command: `python benchmarks/bench_proxy.py --seconds {args.seconds:g} --rounds {args.rounds} --clients {args.clients} --write` · "
        f"Python {platform.python_version()} · {os.cpu_count()} CPUs · {event_loop()} · commit {commit} · {time.strftime('%Y-%m-%d')} · load average at the end {load:.1f} "
        "(the machine is shared: read the ratios of this one run).",
        "",
        f"`pgbench -S -c {args.clients}` (scale 10), each target {args.rounds}× in rotated order, median TPS. The proxy's policy has four rules (deny, approve, mask); "
        "every decision is committed to the log before the statement is forwarded.",
        "",
        "| target | simple TPS | prepared TPS | simple ÷ pgbouncer | prepared ÷ pgbouncer | 1-client simple p50 µs | middle process CPU µs per statement, simple / prepared |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    bouncer = {
        m: statistics.median(tps[("pgbouncer (session pooling)", m)])
        for m in ("simple", "prepared")
    }
    for name in (
        "direct",
        "pgbouncer (session pooling)",
        "subguard, durable SQLite log",
        "subguard, memory log",
    ):
        s = statistics.median(tps[(name, "simple")])
        p = statistics.median(tps[(name, "prepared")])
        used = (
            f"{statistics.median(cpu[(name, 'simple')]):,.0f} / {statistics.median(cpu[(name, 'prepared')]):,.0f}"
            if (name, "simple") in cpu
            else ""
        )
        lines.append(
            f"| {name} | {s:,.0f} | {p:,.0f} | {s / bouncer['simple']:.2f}× | {p / bouncer['prepared']:.2f}× | {latency[name]:,.0f} | {used} |"
        )
    durable_s = (
        statistics.median(tps[("subguard, durable SQLite log", "simple")]) / bouncer["simple"]
    )
    memory_s = statistics.median(tps[("subguard, memory log", "simple")]) / bouncer["simple"]
    added = latency["subguard, durable SQLite log"] - latency["direct"]
    lines += [
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| subguard (durable log) ≥ 0.5× pgbouncer, simple | {durable_s:.2f}× | {'met' if durable_s >= 0.5 else '**not met**'} |",
        f"| subguard (memory log) ≈ 0.8× pgbouncer, simple | {memory_s:.2f}× | {'met' if memory_s >= 0.8 else '**not met**'} |",
        "",
        f"Added p50 latency at one client (durable log, simple): {added:,.0f} µs over direct; the store's bare durable commit on the same disk: {bare:,.0f} µs.",
        "",
        "Where one simple-protocol statement's time goes inside the proxy (p50 µs, measured alone in this process):",
        "",
        "| piece | p50 µs |",
        "|---|---:|",
        *(f"| {k} | {v:,.1f} |" for k, v in parts.items()),
        "",
        *gap(cpu, parts, bare),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        path = Path(__file__).with_name("RESULTS.md")
        current = path.read_text()
        start = current.find("## PostgreSQL proxy (issue 14)")
        if start >= 0:
            end = current.find("\n## ", start + 1)
            current = current[:start] + text + (current[end + 1 :] if end >= 0 else "")
        else:
            current = current.rstrip("\n") + "\n\n" + text
        path.write_text(current)


if __name__ == "__main__":
    main()
