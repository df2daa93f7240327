"""The public surface: `subguard.__all__` is pinned, every name resolves, and the
`Decision.as_dict()` shape that `subguard eval` prints and other tools read is fixed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import subguard

PUBLIC = [
    "AnalysisError",
    "ApprovalRequired",
    "BatchItem",
    "CommandRequest",
    "ConfigError",
    "Decision",
    "Denied",
    "Effect",
    "Engine",
    "EvalError",
    "FieldError",
    "HttpRequest",
    "LogError",
    "Policy",
    "PolicyError",
    "PolicyErrors",
    "Reason",
    "Refused",
    "Resource",
    "SqlRequest",
    "Subject",
    "SubguardError",
    "Terminated",
    "__version__",
    "load_policy",
]

DECISION_KEYS = {"id", "effect", "reasons", "masks", "errors"}


def test_all_is_pinned() -> None:
    assert sorted(subguard.__all__) == sorted(PUBLIC)
    assert len(subguard.__all__) == len(set(subguard.__all__))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(subguard, name) is not None


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from subguard import *", namespace)
    assert {k for k in namespace if k != "__builtins__"} == set(PUBLIC)


def test_error_hierarchy() -> None:
    for name in ("AnalysisError", "ConfigError", "FieldError", "LogError", "PolicyError"):
        assert issubclass(getattr(subguard, name), subguard.SubguardError)
    assert issubclass(subguard.PolicyErrors, subguard.PolicyError)
    assert issubclass(subguard.FieldError, subguard.ConfigError)
    assert issubclass(subguard.FieldError, TypeError)
    assert issubclass(subguard.SubguardError, Exception)


def test_effects() -> None:
    assert [e.value for e in subguard.Effect] == ["allow", "mask", "approve", "deny", "terminate"]


@pytest.fixture
def engine(tmp_path: Path) -> subguard.Engine:
    (tmp_path / "p.guard").write_text(
        'package p\n\n'
        'deny contains "drop" if {\n    some s in input.sql.statements\n    s.kind == "drop"\n}\n\n'
        'approve contains "write" if {\n    some s in input.sql.statements\n    s.kind == "delete"\n}\n\n'
        'mask contains "secret" if "m" in input.subject.groups\n\n'
        "allow if true\n",
        encoding="utf-8",
    )
    return subguard.Engine(subguard.load_policy(tmp_path))


@pytest.mark.parametrize(
    ("sql", "groups", "effect"),
    [("SELECT 1", [], "allow"), ("SELECT 1", ["m"], "mask"), ("DELETE FROM t", [], "approve"), ("DROP TABLE t", [], "deny")],
)
def test_decision_as_dict_keys(engine: subguard.Engine, sql: str, groups: list[str], effect: str) -> None:
    decision = engine.check(subguard.SqlRequest(sql), subject={"id": "a", "groups": groups})
    record = decision.as_dict()
    assert set(record) == DECISION_KEYS
    assert record["effect"] == effect
    assert uuid.UUID(record["id"]) == decision.id
    for reason in record["reasons"]:
        assert set(reason) == {"effect", "rule", "package", "message", "location"}


def test_decision_as_dict_error_shape(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text('package p\n\ndeny contains "n" if to_number(input.subject.id) > 0\n', encoding="utf-8")
    record = subguard.Engine(subguard.load_policy(tmp_path)).check("SELECT 1", subject="abc").as_dict()
    assert set(record) == DECISION_KEYS
    assert record["effect"] == "deny"
    assert [set(e) for e in record["errors"]] == [{"code", "message", "package", "rule", "location"}]


def test_decision_as_dict_masks_object() -> None:
    decision = subguard.Decision(subguard.Effect.MASK, masks={"email": "hash"})
    assert decision.as_dict()["masks"] == {"email": "hash"}
    assert set(decision.as_dict()) == DECISION_KEYS


def test_approval_id_only_when_held() -> None:
    held = subguard.Decision(subguard.Effect.APPROVE, approval_id=uuid.uuid4())
    assert set(held.as_dict()) == DECISION_KEYS | {"approval_id"}
    assert held.as_dict()["approval_id"] == str(held.approval_id)
    assert set(subguard.Decision(subguard.Effect.APPROVE).as_dict()) == DECISION_KEYS


def test_approval_id_from_a_log(tmp_path: Path) -> None:
    from subguard.log import open_log

    (tmp_path / "p.guard").write_text('package p\n\napprove contains "hold" if true\n', encoding="utf-8")
    log = open_log("memory://")
    try:
        engine = subguard.Engine(subguard.load_policy(tmp_path), log=log)
        held = engine.check(subguard.SqlRequest("SELECT 1"), subject="a", session="s1").as_dict()
    finally:
        close = getattr(log, "close", None)
        if close is not None:
            close()
    assert held["effect"] == "approve"
    assert set(held) == DECISION_KEYS | {"approval_id"}
    uuid.UUID(held["approval_id"])


def test_check_never_raises_on_odd_requests(engine: subguard.Engine) -> None:
    for request in ("", "\x00", "SELECT '" * 50, subguard.CommandRequest(""), subguard.HttpRequest("GET", "/")):
        decision = engine.check(request)
        assert isinstance(decision, subguard.Decision)
        assert set(decision.as_dict()) == DECISION_KEYS


def test_policy_errors_carry_positions(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text("package p\n\nallow if input.subject.idd == \"x\"\n", encoding="utf-8")
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(tmp_path)
    (error,) = info.value.errors
    assert (error.code, error.path, error.line, error.col) == ("unknown_field", str(tmp_path / "p.guard"), 3, 24)
    assert error.hint
