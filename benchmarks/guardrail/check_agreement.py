"""Check that the floor, Cedar, Rego (and subguard, once it exists) decide alike.

    python benchmarks/guardrail/check_agreement.py [-n 1000] [--subguard]

Floor vs Rego: effect, reasons and masks must be equal, on the 20-rule policy and on
the generated 1,000-rule one (there, on the inputs that touch its tables). Floor vs Cedar: the effect (Cedar cannot return messages
or columns). Floor vs subguard (`--subguard`): effect,
reasons and masks, on the 20-rule policy and on the generated 1,000-rule one.
Exits 1 and lists the first disagreements if any input is decided differently.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guardrail import floor, generated, harness, inputs

Decide = Callable[[Mapping[str, Any]], floor.Decision]


def disagreements(
    docs: Sequence[Mapping[str, Any]],
    reference: Decide,
    other: Decide,
    effect_only: bool = False,
) -> list[tuple[int, floor.Decision, floor.Decision]]:
    """(index, reference decision, other decision) wherever they differ."""
    out = []
    for i, doc in enumerate(docs):
        want, got = reference(doc), other(doc)
        if (want[0] != got[0]) if effect_only else (want != got):
            out.append((i, want, got))
    return out


def check_peers(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Floor vs Rego (full decision) and floor vs Cedar (effect); also the floor's
    1,000-rule version vs Rego on the same generated rules, which checks the generator."""
    out = {
        "rego": disagreements(docs, floor.decide, harness.RegoDecider()),
        "cedar": disagreements(docs, floor.decide, harness.CedarDecider(), effect_only=True),
    }
    # regopy takes tens of ms per decision at 1,000 rules: check it on the inputs that
    # touch the generated rules' tables, plus a few that do not.
    some = [d for i, d in enumerate(docs) if i < 10 or touches_generated_tables(d)]
    rules = generated.generated_rules()
    with tempfile.TemporaryDirectory() as tmp:
        path = generated.write_policy(Path(tmp), rules, suffix=".rego")
        out["rego-1000"] = disagreements(
            some, floor.make_floor_1000(rules), harness.RegoDecider(path)
        )
    return out


def touches_generated_tables(doc: Mapping[str, Any]) -> bool:
    sql = doc["sql"]
    return any(
        t[:1] == "t" and t[1:].isdigit() for t in sql["tables_read"] | sql["tables_written"]
    )


def check_subguard(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Floor vs subguard on the 20-rule policy and on the generated 1,000-rule policy."""
    out = {"subguard": disagreements(docs, floor.decide, harness.SubguardDecider())}
    rules = generated.generated_rules()
    with tempfile.TemporaryDirectory() as tmp:
        path = generated.write_policy(Path(tmp), rules)
        out["subguard-1000"] = disagreements(
            docs, floor.make_floor_1000(rules), harness.SubguardDecider([path])
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="number of inputs (default 1000)")
    parser.add_argument("--subguard", action="store_true", help="also check subguard")
    args = parser.parse_args(argv)
    docs = inputs.generate(args.n)
    effects = Counter(floor.decide(d)[0] for d in docs)
    print(f"{len(docs)} inputs; floor effects: {dict(sorted(effects.items()))}")
    results = check_peers(docs)
    if args.subguard:
        results.update(check_subguard(docs))
    failed = False
    for name, diffs in results.items():
        print(f"floor vs {name}: {len(diffs)} disagreement(s)")
        for i, want, got in diffs[:5]:
            failed = True
            print(f"  #{i}: floor {want}\n       {name} {got}")
        failed = failed or bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
