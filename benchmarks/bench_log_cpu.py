"""The decision log's CPU per decision, this tree against an older checkout, in one run.

    python benchmarks/bench_log_cpu.py [--old DIR] [--repeat 5] [-n 20000]

Each measurement runs in a fresh process (`PYTHONPATH` set to the tree's `src`), rounds
interleaved between the trees. Times are the calling thread's CPU time
(`time.thread_time_ns`), so other processes on a loaded machine and the log's follower
thread do not count; each cell is the median over rounds of the best of 5 passes of
`-n` calls, in µs per call.

- `before + record`: `DecisionLog.before(ctx)` then `record(ctx, decision)` for one
  decided request (a point SELECT in session `s1`), memory log: the log's whole part of
  a `check`.
- `check, memory log` / `check, no log`: `Engine.check` of the same request with and
  without the memory log (a one-rule policy); their difference is what the log adds.
- `check_many, sqlite`: 10,000 copies of the request over 16 sessions through
  `Engine.check_many` in chunks of 512 (what `eval --batch --store` does) with a durable
  SQLite log, wall time per decision (the commits' fsyncs included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = r"""
import json, sys, tempfile, time, uuid
import subguard
from subguard.log import open_log
n = int(sys.argv[1])
tmp = tempfile.mkdtemp()
with open(tmp + "/p.guard", "w") as f:
    f.write("package bench.log\n\ndefault allow := true\n")
policy = subguard.load_policy([tmp + "/p.guard"])
subject = subguard.Subject("agent", {"agents"})
request = subguard.SqlRequest("SELECT id, name, total FROM accounts WHERE id = 1")
log = open_log("memory://")
engine = subguard.Engine(policy, log=log)
bare = subguard.Engine(policy)
ctx, analysed = engine._prepare(request, subject, None, "s1")
decision = engine._evaluate_with_log(ctx, analysed, time.perf_counter_ns())

def best(f, n):
    out = []
    for _ in range(5):
        t0 = time.thread_time_ns()
        for _ in range(n):
            f()
        out.append((time.thread_time_ns() - t0) / n / 1000)
    return min(out)

def before_record():
    log.before(ctx)
    log.record(ctx, decision)

result = {
    "before + record": best(before_record, n),
    "check, memory log": best(lambda: engine.check(request, subject=subject, session="s1"), n),
    "check, no log": best(lambda: bare.check(request, subject=subject, session="s1"), n),
}
log.close()
durable = open_log(f"sqlite:///{tmp}/{uuid.uuid4().hex}.db")
many = subguard.Engine(policy, log=durable)
items = [(request, subject, None, f"s{i % 16}") for i in range(10_000)]
t0 = time.perf_counter()
for i in range(0, len(items), 512):
    many.check_many(items[i : i + 512])
result["check_many, sqlite"] = (time.perf_counter() - t0) / len(items) * 1e6
durable.close()
print(json.dumps(result))
"""


def run(src: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(n)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", help="a checkout of an older commit (git worktree)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    trees = {"this tree": str(ROOT / "src")}
    if args.old:
        trees["old"] = str(Path(args.old) / "src")
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.repeat):
        for name, src in trees.items():
            rounds[name].append(run(src, args.n))
    rows = list(next(iter(rounds.values()))[0])
    print(
        "| µs per call (median of rounds) | "
        + " | ".join(trees)
        + " |"
        + (" ratio |" if args.old else "")
    )
    print("|---|" + "---:|" * (len(trees) + (1 if args.old else 0)))
    for row in rows:
        values = [statistics.median(r[row] for r in rounds[name]) for name in trees]
        cells = " | ".join(f"{v:.2f}" for v in values)
        ratio = f" {values[0] / values[1]:.2f}× |" if args.old else ""
        print(f"| {row} | {cells} |{ratio}")
    for name in trees:
        added = [r["check, memory log"] - r["check, no log"] for r in rounds[name]]
        rates = [1e6 / r["check_many, sqlite"] for r in rounds[name]]
        print(
            f"{name}: the memory log adds {statistics.median(added):.2f} µs of CPU to a check; "
            f"check_many with SQLite {statistics.median(rates):,.0f} decisions/s "
            f"(rounds {', '.join(f'{x:,.0f}' for x in rates)})"
        )


if __name__ == "__main__":
    main()
