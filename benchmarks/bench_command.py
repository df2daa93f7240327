"""Facts for typical agent commands: the cost of `parse_command` (tree-sitter-bash plus our
word normaliser and facts), cold (a new text each time, no cache) — beside the raw
tree-sitter parse, shlex, and bashlex when installed (a peer; GPL, never a dependency).

Usage: python benchmarks/bench_command.py [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import time
from collections.abc import Callable

import tree_sitter
import tree_sitter_bash

from subguard.command import parse_command, redact_command

COMMANDS = [
    "ls -la /var/log",
    "git status",
    "kubectl get pods -n prod -o wide",
    "psql -h db.internal -U app -c 'SELECT count(*) FROM orders' app",
    "cat /etc/hosts | grep -v '^#' | sort | uniq",
    "find . -name '*.py' -newer setup.cfg",
    "sudo -u postgres psql -c 'SELECT 1'",
    "cd /srv/app && git pull && make test",
    "rm -rf /tmp/build-1842",
    "curl -s https://api.example/v1/health | jq .status",
]


def _time(fn: Callable[[str], object], texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.perf_counter_ns()
        fn(text)
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    # cold: every text is new (a trailing comment makes it unique), nothing cached
    texts = [f"{c} # {i}" for i in range(args.rounds) for c in COMMANDS]
    ts = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
    peers: dict[str, Callable[[str], object]] = {
        "tree-sitter parse only": lambda t: ts.parse(t.encode()),
        "shlex.split (no structure)": lambda t: shlex.split(t, comments=True),
        "subguard parse_command": parse_command,
        "subguard redact_command": redact_command,
    }
    try:
        import bashlex  # type: ignore[import-not-found]

        peers["bashlex.parse (peer, GPL)"] = bashlex.parse
    except ImportError:
        pass
    for fn in peers.values():  # warm-up
        _time(fn, texts[:50])
    gc.disable()
    results = {name: _time(fn, texts) for name, fn in peers.items()}
    gc.enable()
    floor = statistics.median(results["tree-sitter parse only"])
    print("| step | p50 µs | p90 µs | p99 µs | p50 ÷ tree-sitter |")
    print("|---|---:|---:|---:|---:|")
    for name, times in results.items():
        times.sort()
        p50 = statistics.median(times)
        p90 = times[int(len(times) * 0.9)]
        p99 = times[int(len(times) * 0.99)]
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {p50 / floor:.1f}× |")


if __name__ == "__main__":
    main()
