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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sections", nargs="*", default=["shape", "startup"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--old", help="a checkout of the commit before this work (git worktree)")
    args = parser.parse_args()
    for section in args.sections:
        if section == "shape":
            print("shape", bench_shape(args.repeat, args.n), flush=True)
        elif section == "startup":
            print("startup", bench_startup(max(args.repeat, 5), args.old), flush=True)
        else:
            raise SystemExit(f"unknown section {section}")


if __name__ == "__main__":
    main()
