"""Policy-evaluation benchmark: per-decision latency of the 20-rule guardrail policy.

    python benchmarks/bench_policy.py [--passes 5] [--write]

In one process and one run, on the same 1,000 seeded input documents (pre-extracted
facts, see guardrail/inputs.py):

1. p50/p90/p99 per-decision latency of the hand-written floor, subguard (when its engine
   is importable), cedarpy and regopy, each including the conversion of the input
   document into what the engine consumes; ratios to the floor.
2. 1,000 rules vs 20: the 20 rules plus 980 generated ones that discriminate on
   statement kind and table, for subguard and the floor's equivalent (and regopy on a
   subset, for reference).
3. Compile time of the 1,000-rule policy (`subguard.load_policy`; regopy for reference).

Method: a warm-up pass per engine that also checks its decisions against the floor's,
then `--passes` timed passes over all inputs; each pass runs the engines one after the
other in a rotated order so they share the machine's noise. Each decision is timed on
its own with `time.perf_counter_ns`, garbage collection disabled while timing.

`--write` replaces the section "## Policy evaluation (issue: the core)" of
benchmarks/RESULTS.md with the tables, leaving the other sections as they are.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from guardrail import floor, generated, harness, inputs  # noqa: E402

Decide = Callable[[Mapping[str, Any]], Any]
RESULTS = HERE / "RESULTS.md"
SECTION = "## Policy evaluation (issue: the core)"
COMMAND = "python benchmarks/bench_policy.py --write"


# ── measurement ──────────────────────────────────────────────────────────────────────


def _time_pass(decide: Decide, docs: Sequence[Mapping[str, Any]], out: list[int]) -> None:
    clock = time.perf_counter_ns
    append = out.append
    for doc in docs:
        t0 = clock()
        decide(doc)
        append(clock() - t0)


def measure(
    engines: Mapping[str, Decide], docs: Sequence[Mapping[str, Any]], passes: int
) -> dict[str, list[int]]:
    """Per-decision times (ns) of each engine over `passes` passes, rotating the order."""
    samples: dict[str, list[int]] = {name: [] for name in engines}
    names = list(engines)
    gc.collect()
    gc.disable()
    try:
        for p in range(passes):
            k = p % len(names)
            for name in names[k:] + names[:k]:
                _time_pass(engines[name], docs, samples[name])
    finally:
        gc.enable()
    return samples


def warm_up_and_check(
    engines: Mapping[str, Decide],
    docs: Sequence[Mapping[str, Any]],
    reference: Decide,
    effect_only: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """One untimed pass per engine; the number of inputs it decides like `reference`."""
    want = [reference(d) for d in docs]
    agree = {}
    for name, decide in engines.items():
        got = [decide(d) for d in docs]
        if name in effect_only:
            agree[name] = sum(w[0] == g[0] for w, g in zip(want, got))
        else:
            agree[name] = sum(w == g for w, g in zip(want, got))
    return agree


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile, in µs."""
    i = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[i] / 1000


def stats(ns: Sequence[int]) -> dict[str, float]:
    s = sorted(ns)
    return {
        "p50": percentile(s, 0.50),
        "p90": percentile(s, 0.90),
        "p99": percentile(s, 0.99),
        "mean": sum(s) / len(s) / 1000,
    }


def _best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(min, median) wall time of `fn` in ms."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    return times[0], times[len(times) // 2]


# ── engines ──────────────────────────────────────────────────────────────────────────


def subguard_engine(paths: Sequence[Path] | None = None) -> tuple[Decide | None, str]:
    """subguard's decider, or None and why not."""
    try:
        return harness.SubguardDecider(paths or (harness.GUARD_POLICY,)), ""
    except (ImportError, AttributeError, NotImplementedError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _revision() -> str:
    """` · commit abc1234` (and whether src/ differs from it), if this is a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=HERE.parent,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" · commit {head}" + (" + uncommitted changes under src/" if dirty else "")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


# ── report ───────────────────────────────────────────────────────────────────────────


def _us(x: float | None) -> str:
    if x is None:
        return "pending"
    return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def _ratio(x: float | None, digits: int = 1) -> str:
    return "pending" if x is None else f"{x:,.{digits}f}×"


def _check(ok: bool | None) -> str:
    return "pending" if ok is None else ("met" if ok else "**not met**")


def run(args: argparse.Namespace) -> str:
    docs = inputs.generate(args.n)
    n = len(docs)
    effects: dict[str, int] = {}
    for d in docs:
        e = floor.decide(d)[0]
        effects[e] = effects.get(e, 0) + 1
    log = print if not args.quiet else (lambda *a, **k: None)
    log(f"{n} inputs; effects by the floor: {effects}")

    # 1. The 20-rule policy, side by side.
    sg20, why = subguard_engine()
    if sg20 is None:
        log(f"subguard: unavailable ({why})")
    engines: dict[str, Decide] = {"floor": floor.decide}
    if sg20 is not None:
        engines["subguard"] = sg20
    engines["cedarpy"] = harness.CedarDecider()
    engines["regopy"] = harness.RegoDecider()
    agree = warm_up_and_check(engines, docs, floor.decide, frozenset({"cedarpy"}))
    log(f"agreement with the floor: {agree}")
    samples = measure(engines, docs, args.passes)
    st = {name: stats(ns) for name, ns in samples.items()}
    for name, s in st.items():
        log(f"{name:10} p50 {s['p50']:10.1f} µs  p90 {s['p90']:10.1f}  p99 {s['p99']:10.1f}")

    # 2. 1,000 rules vs 20.
    rules = generated.generated_rules()
    with tempfile.TemporaryDirectory() as tmp:
        guard_1000 = generated.write_policy(Path(tmp), rules)
        rego_1000 = generated.write_policy(Path(tmp), rules, suffix=".rego")
        floor_1000 = floor.make_floor_1000(rules)
        changed = sum(floor_1000(d) != floor.decide(d) for d in docs)
        scale: dict[str, Decide] = {"floor-20": floor.decide, "floor-1000": floor_1000}
        sg1000 = None
        if sg20 is not None:
            sg1000, why = subguard_engine([guard_1000])
            scale["subguard-20"] = sg20
            if sg1000 is not None:
                scale["subguard-1000"] = sg1000
            else:
                log(f"subguard 1,000 rules: unavailable ({why})")
        scale_agree = warm_up_and_check(
            {k: v for k, v in scale.items() if k.endswith("1000")}, docs, floor_1000
        )
        log(f"1,000-rule agreement with the floor: {scale_agree}")
        scale_st = {k: stats(v) for k, v in measure(scale, docs, args.passes).items()}

        # regopy for reference, on a subset: it takes tens of ms per decision at 1,000 rules.
        rego_docs = docs[: args.rego_subset]
        rego_scale = {"regopy-20": engines["regopy"], "regopy-1000": harness.RegoDecider(rego_1000)}
        warm_up_and_check(rego_scale, rego_docs[:10], floor_1000)
        rego_scale_st = {k: stats(v) for k, v in measure(rego_scale, rego_docs, 1).items()}

        # 3. Compile time for 1,000 rules.
        compile_ms: dict[str, tuple[float, float] | None] = {}
        if sg1000 is not None:
            import subguard

            compile_ms["subguard-1000"] = _best_of(
                lambda: subguard.load_policy([str(guard_1000)]), args.compile_repeat
            )
            compile_ms["subguard-20"] = _best_of(
                lambda: subguard.load_policy([str(harness.GUARD_POLICY)]), args.compile_repeat
            )
        else:
            compile_ms["subguard-1000"] = None
            compile_ms["subguard-20"] = None

        def rego_build(path: Path) -> Callable[[], Any]:
            return lambda: harness.RegoDecider(path)

        compile_ms["regopy-1000"] = _best_of(rego_build(rego_1000), args.compile_repeat)
        compile_ms["regopy-20"] = _best_of(rego_build(harness.REGO_POLICY), args.compile_repeat)

    # ── the Markdown ──
    f50 = st["floor"]["p50"]
    s = st.get("subguard")
    s50 = s["p50"] if s else None
    lines = [
        SECTION,
        "",
        f"Command: `{COMMAND}` (`--passes {args.passes}`) · Python {platform.python_version()}"
        f" · {os.cpu_count()} CPUs · {platform.system()} {platform.machine()}"
        f" · cedarpy {_version('cedarpy')} · regopy {_version('regopy')}"
        f" · {datetime.date.today().isoformat()}{_revision()}",
        "",
        f"{n:,} seeded input documents (pre-extracted facts; `benchmarks/guardrail/inputs.py`),"
        f" the 20-rule guardrail policy (`benchmarks/guardrail/policy.*`). Decisions by the"
        " floor: " + ", ".join(f"{k} {v}" for k, v in sorted(effects.items())) + ".",
        "Each engine's time includes converting the input document into what it consumes"
        " (Rego: the JSON form and `regopy.Input`; Cedar: entities and a flattened context).",
        f"{args.passes} timed passes over all inputs after a warm-up pass, engines in rotated"
        " order, each decision timed alone with `perf_counter_ns`, gc off.",
        "",
        "### Per-decision latency, 20 rules",
        "",
        "| engine | p50 µs | p90 µs | p99 µs | mean µs | p50 ÷ floor | agrees with floor |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    labels = {
        "floor": "hand-written Python (floor)",
        "subguard": "subguard",
        "cedarpy": "cedarpy (1 `is_authorized`)",
        "regopy": "regopy (bundle entrypoint)",
    }
    for name in ("floor", "subguard", "cedarpy", "regopy"):
        if name not in st:
            lines.append(f"| {labels[name]} | pending | pending | pending | pending | pending | pending |")
            continue
        r = st[name]
        what = "effect" if name == "cedarpy" else "effect, reasons, masks"
        agrees = "(reference)" if name == "floor" else f"{agree[name]}/{n} ({what})"
        lines.append(
            f"| {labels[name]} | {_us(r['p50'])} | {_us(r['p90'])} | {_us(r['p99'])} |"
            f" {_us(r['mean'])} | {_ratio(r['p50'] / f50)} | {agrees} |"
        )

    c50, r50 = st["cedarpy"]["p50"], st["regopy"]["p50"]
    sg_ratio = None if s50 is None else s50 / f50
    sc = scale_st
    sg_scale = (
        sc["subguard-1000"]["p50"] / sc["subguard-20"]["p50"]
        if "subguard-1000" in sc and "subguard-20" in sc
        else None
    )
    lines += [
        "",
        f"Peers relative to the floor's p50: cedarpy {c50 / f50:,.0f}×, regopy {r50 / f50:,.0f}×.",
        "",
        "### Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| subguard p50 ≤ 2× floor | {_ratio(sg_ratio, 2)} | {_check(None if sg_ratio is None else sg_ratio <= 2)} |",
        f"| cedarpy p50 ≥ 20× subguard | {_ratio(None if s50 is None else c50 / s50)} |"
        f" {_check(None if s50 is None else c50 / s50 >= 20)} |",
        f"| regopy p50 ≥ 50× subguard | {_ratio(None if s50 is None else r50 / s50)} |"
        f" {_check(None if s50 is None else r50 / s50 >= 50)} |",
        f"| subguard 1,000 rules ≤ 3× 20 rules (p50) | {_ratio(sg_scale, 2)} |"
        f" {_check(None if sg_scale is None else sg_scale <= 3)} |",
        "",
        "### 1,000 rules vs 20",
        "",
        "The 20 rules plus 980 generated rules, each on one statement kind and one table"
        " (`benchmarks/guardrail/generated.py`); they change the decision of"
        f" {changed} of the {n:,} inputs. The floor's 1,000-rule version indexes the generated rules"
        " by (kind, table), as a hand-written check would.",
        "",
        "| engine | 20 rules p50 µs | 1,000 rules p50 µs | 1,000 rules p99 µs | 1,000 ÷ 20 (p50) |",
        "|---|---:|---:|---:|---:|",
    ]

    def scale_row(label: str, a: dict[str, float] | None, b: dict[str, float] | None) -> str:
        if a is None or b is None:
            return f"| {label} | {_us(a['p50'] if a else None)} | pending | pending | pending |"
        return (
            f"| {label} | {_us(a['p50'])} | {_us(b['p50'])} | {_us(b['p99'])} |"
            f" {_ratio(b['p50'] / a['p50'], 2)} |"
        )

    lines.append(scale_row("hand-written Python (floor)", sc["floor-20"], sc["floor-1000"]))
    lines.append(scale_row("subguard", sc.get("subguard-20"), sc.get("subguard-1000")))
    lines.append(
        scale_row(
            f"regopy (first {len(rego_docs)} inputs, 1 pass)",
            rego_scale_st["regopy-20"],
            rego_scale_st["regopy-1000"],
        )
    )
    agree_1000 = ", ".join(
        f"{k} {v}/{n}" for k, v in scale_agree.items() if not k.startswith("floor")
    ) or "pending"
    lines += [
        "",
        f"1,000-rule decisions equal to the floor's: {agree_1000}.",
        "",
        "### Compile time",
        "",
        f"| policy | min ms | median ms (of {args.compile_repeat}) |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("subguard-1000", "`subguard.load_policy`, 1,000 rules"),
        ("subguard-20", "`subguard.load_policy`, 20 rules"),
        ("regopy-1000", "regopy `Interpreter.build`, 1,000 rules"),
        ("regopy-20", "regopy `Interpreter.build`, 20 rules"),
    ):
        v = compile_ms[key]
        lines.append(
            f"| {label} | pending | pending |" if v is None else f"| {label} | {v[0]:,.1f} | {v[1]:,.1f} |"
        )
    if s is None:
        lines += ["", "subguard: pending — its engine (`subguard.load_policy`) is not built yet."]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace SECTION (up to the next `## ` heading) in `path` with `text`."""
    current = path.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if not pattern.search(current):
        raise SystemExit(f"{path.name}: no section {SECTION!r}")
    path.write_text(pattern.sub(lambda _: text + "\n", current, count=1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5, help="timed passes (default 5)")
    parser.add_argument("-n", type=int, default=1000, help="inputs (default 1000)")
    parser.add_argument(
        "--rego-subset", type=int, default=100,
        help="inputs for regopy's 1,000-rule reference row (default 100)",
    )
    parser.add_argument("--compile-repeat", type=int, default=5, help="compile repeats")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    text = run(args)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
