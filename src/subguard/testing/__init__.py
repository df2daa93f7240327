"""Testing policies: the `subguard test` runner, Hypothesis strategies for requests, and
assertions about what a policy may never allow.

Use it from your own pytest suite (the `subguard_policy` fixture comes with the
package's pytest plugin)::

    from hypothesis import given
    from subguard import testing as sgt

    @given(sgt.requests(sgt.sql(kinds=["delete", "update"]), subjects=sgt.subjects(groups=["agents"])))
    def test_unbounded_writes_are_held(subguard_policy, request):
        sgt.assert_at_least(subguard_policy, request, "approve", when=sgt.unbounded_write)
"""

from subguard.testing.runner import (
    Coverage,
    DecisionTrace,
    TestReport,
    TestResult,
    is_test_file,
    policy_files,
    run_tests,
    test_builtins,
)

__all__ = [
    "Coverage",
    "DecisionTrace",
    "TestReport",
    "TestResult",
    "is_test_file",
    "policy_files",
    "run_tests",
    "test_builtins",
]
