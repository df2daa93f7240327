"""Per-decision latency of the 20-rule guardrail policy under the `subguard` on the
import path, for comparing two revisions of the language side by side:

    git archive <rev> src grammar | tar -x -C /tmp/rev
    PYTHONPATH=/tmp/rev/src python benchmarks/bench_language.py --passes 5   # the other revision
    python benchmarks/bench_language.py --passes 5                          # this checkout

Prints p50, p90 and mean per decision over all 1,000 seeded inputs (after a warm-up
pass), each decision timed alone with `perf_counter_ns`, garbage collection off.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guardrail.harness import SubguardDecider
from guardrail.inputs import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    inputs = generate(1000)
    decide = SubguardDecider()
    for document in inputs:
        decide(document)
    samples: list[int] = []
    for _ in range(args.passes):
        gc.disable()
        try:
            for document in inputs:
                start = time.perf_counter_ns()
                decide(document)
                samples.append(time.perf_counter_ns() - start)
        finally:
            gc.enable()
    samples.sort()
    p50, p90 = samples[len(samples) // 2], samples[int(len(samples) * 0.9)]
    print(f"p50 {p50 / 1000:.2f} µs · p90 {p90 / 1000:.2f} µs · mean {statistics.mean(samples) / 1000:.2f} µs")


if __name__ == "__main__":
    main()
