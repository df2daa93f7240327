"""Instructions per decision, counted by valgrind's callgrind: a before/after comparison
that a busy, shared machine cannot blur (seconds move with the load; instruction counts
of the same code and inputs do not).

    python benchmarks/bench_instructions.py --src OLD/src --src src [--n 2000]

Each `--src` is a source tree of subguard (a `git worktree` of an older commit, say). For
each tree and workload the workload runs twice under callgrind, with `n` operations and
with none; the difference divided by `n` is the cost of one operation, free of start-up.
Workloads, both on the memory log (no disk):

- `record`: what the log adds to a check (preflight `before` + `record`), as in
  bench_log.py's "before+record" rows.
- `check`: `Engine.check` end to end with bench_log.py's two-rule policy and a repeated
  statement (analysis cache hit), as in its "Engine.check" rows.
- `evaluate`: `Engine.evaluate` of the 20-rule guardrail policy over bench_policy.py's
  seeded input documents (ready documents: no analysis, no log), one document per
  operation, cycling over 200 of them.
- `gate`: one guarded `execute(...).fetchone()` through the DB-API gate, as
  bench_gate.py's "guarded" rows (sqlite3 in memory, its policy, the statement's shape
  repeated, the id a parameter) but with no decision log: the wrapper and the decision.
  The log's part is the `record` workload; the memory log's follower thread polls in
  the background, so workloads with a log count a few percent more or less from run to
  run, and this one leaves it out.

The tree measured is the one `--src` names, whatever is installed: the workload imports
`subguard` from it before anything else (bench_log.py puts its own tree first on
`sys.path` when imported), and stops if the package came from elsewhere.

Needs valgrind. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOAD = r"""
import os, sys
src = os.path.abspath({src!r})
sys.path.insert(0, src)
import subguard  # from `src`, first: what bench_log.py imports later is this package
if not os.path.abspath(subguard.__file__).startswith(os.path.join(src, "")):
    raise SystemExit(f"subguard imported from {{subguard.__file__}}, not from {{src}}")
sys.path.insert(0, {bench!r})
import bench_log as b
from subguard.log import open_log

n, which = int(sys.argv[1]), sys.argv[2]
if which == "evaluate":
    from guardrail import harness, inputs
    docs = inputs.generate(200, seed=7)
    evaluate = harness.SubguardDecider().evaluate
    for doc in docs:  # warm
        evaluate(doc)
    def op(k):
        evaluate(docs[k % 200])
elif which == "gate":
    import uuid
    import bench_gate as g
    import subguard
    from subguard.adapters import dbapi
    from subguard.engine.policy import policy_from_sources
    engine = subguard.Engine(policy_from_sources([("gate.guard", g.POLICY)]))
    conn = dbapi.guard(
        g.database(), engine, subject="bench-agent", resource={{"name": "bench", "kind": "sqlite"}},
        session=f"bench-{{uuid.uuid4().hex[:8]}}", tags={{"accounts.email": ["pii"]}},
    )
    def call(i):
        conn.execute(g.SQL, (i,)).fetchone()
    for i in range(200):  # warm
        call(i % 1000 + 1)
    def op(k):
        call(k % 1000 + 1)
else:
    log = open_log("memory://")
    op = b.check_op(log) if which == "record" else b.engine_op(b.make_engine(log))
    op(0)  # warm: caches filled, session known
for k in range(n):
    op(k if which in ("evaluate", "gate") else 0)
"""

COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(src: str, which: str, n: int) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(WORKLOAD.format(bench=HERE, src=src))
        script = f.name
    try:
        env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, script, str(n), which],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(script)
    found = COLLECTED.findall(done.stderr)
    if not found:
        raise SystemExit(f"no instruction count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", required=True, help="a subguard source tree")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workload", action="append", choices=("record", "check", "evaluate", "gate"))
    args = parser.parse_args()
    workloads = args.workload or ["record", "check", "evaluate", "gate"]
    print("| workload | " + " | ".join(args.src) + " | last ÷ first |")
    print("|---|" + "---:|" * (len(args.src) + 1))
    for which in workloads:
        per_op = []
        for src in args.src:
            total = instructions(src, which, args.n) - instructions(src, which, 0)
            per_op.append(total / args.n)
        cells = " | ".join(f"{x:,.0f}" for x in per_op)
        print(f"| {which} (instructions per operation) | {cells} | {per_op[-1] / per_op[0]:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
