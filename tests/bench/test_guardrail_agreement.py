"""The guardrail benchmark's engines decide alike (benchmarks/guardrail/check_agreement.py).

The floor, Cedar and Rego are checked now. `test_subguard_agrees_with_floor` checks
subguard's engine against the floor, on policy.guard and on the generated 1,000-rule
policy; until `subguard.load_policy` exists it is reported as XFAIL (the missing
attribute only — any other failure fails), and it runs for real as soon as it does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from guardrail import check_agreement, floor, inputs  # noqa: E402

N = 200


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return inputs.generate(N)


def _report(diffs: list) -> str:
    return "\n".join(f"input {i}: want {want}, got {got}" for i, want, got in diffs[:10])


def test_inputs_are_varied(docs: list[dict]) -> None:
    effects = {floor.decide(d)[0] for d in docs}
    assert effects == {"allow", "mask", "approve", "deny", "terminate"}
    assert inputs.generate(N) == docs  # seeded: the same documents every time


@pytest.mark.slow
def test_peers_agree_with_floor(docs: list[dict]) -> None:
    pytest.importorskip("cedarpy")
    pytest.importorskip("regopy")
    for name, diffs in check_agreement.check_peers(docs).items():
        assert not diffs, f"floor vs {name}:\n{_report(diffs)}"


def test_subguard_agrees_with_floor(docs: list[dict]) -> None:
    for name, diffs in check_agreement.check_subguard(docs).items():
        assert not diffs, f"floor vs {name}:\n{_report(diffs)}"
