"""Data-path benchmark: shape-keyed analysis and one-shot start-up, as ratios from one run.

Run:  python benchmarks/bench_datapath.py                 (every section)
      python benchmarks/bench_datapath.py shape --repeat 5
      python benchmarks/bench_datapath.py startup --repeat 15

Sections:
- shape: 10,000 pgbench-like statements with distinct literals, analysed with the shape
  cache and with it disabled (every text a cold analysis, as before the cache); reports
  the total of each, their ratio per repetition and the median ratio.
- startup: `subguard eval --rules rules/ --sql …` one-shot wall time (fresh processes),
  cold policy cache then warm, against `python -c pass` (the interpreter's own floor)
  and, with `--old DIR`, the same command from a checkout of the commit before this work
  (`git worktree add DIR 1dbc045`). Each cell: [median, min, max] seconds.
- batch: `eval --batch` on 10,000 ready input documents (`{"input": …}` lines of the
  guardrail benchmark's documents), µs per decision in-process, against the floor's own
  batch loop and (with `--old`) the commit before this work; rounds interleaved.
- proxy: 8 threads calling `Engine.check` with a durable SQLite log on pgbench
  statements with distinct literals (`--seconds` each): decisions/s, p50, p99, against
  the commit before this work (`--old`), rounds interleaved.
- store: `eval --batch` of one repeated statement over 16 sessions, without a store and
  with a durable SQLite store, decisions/s ([median, best]).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pgbench_statements(n: int, seed: int = 7) -> list[str]:
    """pgbench's TPC-B-like transaction, statement by statement, every literal drawn anew."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        aid, tid, bid = rng.randint(1, 10**7), rng.randint(1, 1000), rng.randint(1, 100)
        delta = rng.randint(-5000, 5000)
        out += [
            "BEGIN",
            f"UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}",
            f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}",
            f"UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}",
            f"UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid}",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            f"VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP)",
            "END",
        ]
    return out[:n]


def bench_shape(repeat: int, n: int) -> dict[str, Any]:
    from subguard.sql import CACHE, analyze
    from subguard.sql._analyze import SHAPE_CACHE

    texts = pgbench_statements(n)
    assert len(set(texts)) > n * 0.7
    cold: list[float] = []
    shaped: list[float] = []
    ratios: list[float] = []
    entries = SHAPE_CACHE.max_entries
    for _ in range(repeat):
        CACHE.clear()
        SHAPE_CACHE.max_entries = 0  # nothing stays: every text is analysed cold
        t0 = time.perf_counter()
        for t in texts:
            analyze(t, dialect="postgres")
        c = time.perf_counter() - t0
        SHAPE_CACHE.max_entries = entries
        CACHE.clear()
        t0 = time.perf_counter()
        for t in texts:
            analyze(t, dialect="postgres")
        s = time.perf_counter() - t0
        cold.append(c)
        shaped.append(s)
        ratios.append(s / c)
    return {
        "statements": n,
        "cold_us": [round(x / n * 1e6, 1) for x in cold],
        "shaped_us": [round(x / n * 1e6, 1) for x in shaped],
        "ratio": [round(r, 3) for r in ratios],
        "ratio_median": round(statistics.median(ratios), 3),
        "shape_hits": SHAPE_CACHE.hits,
    }


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
    took = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{cmd} failed: {proc.stderr.decode()[-2000:]}")
    return took


def bench_startup(repeat: int, old: str | None) -> dict[str, Any]:
    """Interleaved runs (floor, old commit, cold cache, warm cache) so load hits all alike."""
    sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 42"
    args = ["-m", "subguard", "eval", "--rules", str(ROOT / "rules"), "--sql", sql]
    env = dict(os.environ)
    runs: dict[str, list[float]] = {"floor": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as cache:
        env["SUBGUARD_CACHE_DIR"] = cache
        old_env = {**env, "PYTHONPATH": str(Path(old) / "src")} if old else env
        for _ in range(repeat):
            runs["floor"].append(_wall([sys.executable, "-c", "pass"], env))
            if old:
                runs.setdefault("old", []).append(_wall([sys.executable, *args], old_env))
            shutil.rmtree(cache, ignore_errors=True)
            runs["cold"].append(_wall([sys.executable, *args], env))
            runs["warm"].append(_wall([sys.executable, *args], env))
    med = statistics.median
    out: dict[str, Any] = {
        f"{k}_s": [round(med(v), 3), round(min(v), 3), round(max(v), 3)] for k, v in runs.items()
    }
    out["bytecode_written"] = not sys.flags.dont_write_bytecode
    if old:
        out["warm_over_old"] = round(med(runs["warm"]) / med(runs["old"]), 3)
    return out


_BATCH_SCRIPT = r"""
import gc, json, os, sys, time
sys.path.insert(0, sys.argv[3])
from guardrail import floor
path, which = sys.argv[1], sys.argv[2]
devnull = os.open(os.devnull, os.O_WRONLY)
saved = os.dup(1)
if which == "floor":
    import orjson
    SETS = frozenset({"groups", "tables_touched", "tables_read", "tables_written", "functions",
                      "tags", "roles", "settings", "alter_actions", "external_io", "privileges",
                      "objects", "principals"})
    def sets(value):  # the schema's set fields as sets, by name: no checking at all
        if type(value) is dict:
            return {k: (frozenset(v) if k in SETS and type(v) is list else sets(v))
                    for k, v in value.items()}
        if type(value) is list:
            return [sets(v) for v in value]
        return value
    def run():
        out = []
        with open(path, "rb") as f:
            for line in f:
                effect, reasons, masks = floor.decide(sets(orjson.loads(line)["input"]))
                out.append(orjson.dumps({"effect": effect, "reasons": reasons, "masks": masks}))
                if len(out) >= 512:
                    os.write(1, b"\n".join(out) + b"\n"); out.clear()
        os.write(1, b"\n".join(out) + b"\n")
else:
    import subguard
    from subguard.cli import _decide_batch, _Progress
    engine = subguard.Engine(subguard.load_policy([sys.argv[4]]))
    gc.freeze()
    def run():
        _decide_batch(engine, path, "jsonl", _Progress())
        sys.stdout.flush()
n = sum(1 for _ in open(path, "rb"))
best = []
for _ in range(int(sys.argv[5])):
    os.dup2(devnull, 1)
    t0 = time.perf_counter()
    run()
    t = time.perf_counter() - t0
    os.dup2(saved, 1)
    best.append(t / n * 1e6)
print(json.dumps(sorted(best)))
"""


def _batch_file(n: int) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import json

    from guardrail import inputs

    path = Path(tempfile.gettempdir()) / f"subguard-bench-batch-{n}.jsonl"
    docs = inputs.generate(min(n, 2000))
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"input": inputs.to_json(docs[i % len(docs)])}) + "\n")
    return path


def bench_batch(repeat: int, n: int, old: str | None) -> dict[str, Any]:
    """`eval --batch` on ready input documents: µs per decision, in-process (the batch
    loop, start-up excluded), against the floor's own batch loop (orjson in, the
    hand-written rules, orjson out, one write per chunk), rounds interleaved."""
    import json

    path = _batch_file(n)
    policy = str(ROOT / "benchmarks" / "guardrail" / "policy.guard")
    who = {"floor": None, "subguard": str(ROOT / "src")}
    if old:
        who["old"] = str(Path(old) / "src")
    per: dict[str, list[float]] = {k: [] for k in who}
    for _ in range(repeat):
        for name, src in who.items():
            env = dict(os.environ)
            if src:
                env["PYTHONPATH"] = src
            proc = subprocess.run(
                [sys.executable, "-c", _BATCH_SCRIPT, str(path), name,
                 str(ROOT / "benchmarks"), policy, "1"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            per[name] += json.loads(proc.stdout.strip().splitlines()[-1])
    med = statistics.median
    out: dict[str, Any] = {f"{k}_us": [round(med(v), 1), round(min(v), 1)] for k, v in per.items()}
    ratios = [s / f for s, f in zip(per["subguard"], per["floor"], strict=True)]
    out["subguard_over_floor"] = [round(med(ratios), 2), round(min(ratios), 2), round(max(ratios), 2)]
    if old:
        out["old_over_floor"] = round(med(per["old"]) / med(per["floor"]), 2)
    return out


_PROXY_SCRIPT = r'''
import json, os, random, sys, tempfile, threading, time
import subguard
from subguard.log import open_log
seconds, threads = float(sys.argv[1]), int(sys.argv[2])
RULES = """package guard.bench

deny contains "drop" if {
    some s in input.sql.statements
    s.kind == "drop"
}

default allow := true
"""
tmp = tempfile.mkdtemp()
rules = os.path.join(tmp, "p.guard")
with open(rules, "w") as f:
    f.write(RULES)
log = open_log(f"sqlite:///{tmp}/log.db", create=True)
engine = subguard.Engine(subguard.load_policy([rules]), log=log)
subject = subguard.Subject("agent", {"agents"})
resource = subguard.Resource(name="bench", kind="postgres")
def texts(rng):
    while True:
        aid, tid, bid = rng.randint(1, 10**7), rng.randint(1, 1000), rng.randint(1, 100)
        delta = rng.randint(-5000, 5000)
        yield f"UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}"
        yield f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}"
        yield f"UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}"
        yield f"UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid}"
        yield ("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
               f"VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP)")
lat = [[] for _ in range(threads)]
stop = threading.Event()
barrier = threading.Barrier(threads + 1)
def worker(k):
    gen = texts(random.Random(k))
    session = f"s{k}"
    barrier.wait()
    out = lat[k]
    while not stop.is_set():
        t0 = time.perf_counter()
        d = engine.check(subguard.SqlRequest(next(gen)), subject=subject, resource=resource,
                         session=session)
        out.append(time.perf_counter() - t0)
        assert d.effect.value == "allow", d
pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for t in pool: t.start()
barrier.wait()
t0 = time.perf_counter()
time.sleep(seconds)
stop.set()
for t in pool: t.join()
elapsed = time.perf_counter() - t0
log.close()
all_ = sorted(x for l in lat for x in l)
print(json.dumps({"rate": len(all_) / elapsed, "p50_ms": all_[len(all_) // 2] * 1e3,
                  "p99_ms": all_[int(len(all_) * 0.99)] * 1e3}))
'''


def bench_proxy(repeat: int, seconds: float, old: str | None) -> dict[str, Any]:
    """8 threads calling `Engine.check` with a durable SQLite log on pgbench statements
    whose literals differ; decisions/s, p50 and p99, this commit and (with `--old`) the
    commit before this work, rounds interleaved."""
    import json

    who = {"subguard": str(ROOT / "src")}
    if old:
        who["old"] = str(Path(old) / "src")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in who}
    for _ in range(repeat):
        for name, src in who.items():
            env = {**os.environ, "PYTHONPATH": src}
            proc = subprocess.run(
                [sys.executable, "-c", _PROXY_SCRIPT, str(seconds), "8"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = statistics.median
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        out[name] = {
            k: round(med(r[k] for r in rs), 2) for k in ("rate", "p50_ms", "p99_ms")
        }
        out[name]["rates"] = [round(r["rate"]) for r in rs]
    if old:
        ratios = [a["rate"] / b["rate"] for a, b in zip(runs["subguard"], runs["old"], strict=True)]
        out["rate_over_old"] = [round(med(ratios), 2), round(min(ratios), 2), round(max(ratios), 2)]
    return out


def bench_store(repeat: int, n: int) -> dict[str, Any]:
    """`eval --batch` of one repeated statement over 16 sessions, in-process, without a
    store and with a durable SQLite store: decisions/s."""
    import contextlib
    import io
    import uuid

    import orjson

    from subguard.cli import main as cli

    tmp = tempfile.mkdtemp()
    rules = os.path.join(tmp, "p.guard")
    with open(rules, "w") as f:
        f.write('package guard.bench\n\ndefault allow := true\n')
    batch = os.path.join(tmp, "b.jsonl")
    with open(batch, "wb") as f:
        for i in range(n):
            line = {"sql": "SELECT total FROM orders WHERE id = 42", "subject": "agent",
                    "session": f"s{i % 16}"}  # fmt: skip
            f.write(orjson.dumps(line) + b"\n")
    rates: dict[str, list[float]] = {"none": [], "sqlite": []}
    for _ in range(repeat):
        for name in rates:
            argv = ["eval", "--rules", rules, "--batch", batch, "--format", "jsonl"]
            if name == "sqlite":
                argv += ["--store", f"sqlite:///{tmp}/{uuid.uuid4().hex}.db"]
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                cli.main(argv, standalone_mode=False)
            rates[name].append(n / (time.perf_counter() - t0))
    return {k: [round(statistics.median(v)), round(max(v))] for k, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sections", nargs="*", default=["shape", "startup", "batch", "proxy", "store"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--old", help="a checkout of the commit before this work (git worktree)")
    args = parser.parse_args()
    for section in args.sections:
        if section == "shape":
            print("shape", bench_shape(args.repeat, args.n), flush=True)
        elif section == "store":
            print("store", bench_store(args.repeat, min(args.n, 10_000)), flush=True)
        elif section == "proxy":
            print("proxy", bench_proxy(args.repeat, args.seconds, args.old), flush=True)
        elif section == "batch":
            print("batch", bench_batch(args.repeat, min(args.n, 10_000), args.old), flush=True)
        elif section == "startup":
            print("startup", bench_startup(max(args.repeat, 5), args.old), flush=True)
        else:
            raise SystemExit(f"unknown section {section}")


if __name__ == "__main__":
    main()
