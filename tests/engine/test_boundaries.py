"""Every boundary fails closed with a clear error (issue 9): policy paths that cannot be
read are load errors, public constructors reject wrong types instead of coercing them,
`check` and `check_many` never raise and never allow a malformed request.

Each test is named after the finding it pins; each failed before the fix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import subguard
from subguard import (
    CommandRequest,
    ConfigError,
    Effect,
    Engine,
    FieldError,
    HttpRequest,
    PolicyErrors,
    Resource,
    SqlRequest,
    Subject,
    load_policy,
)
from subguard.engine import find_policy_files, session_document

DENY_DROP = """package p

deny contains "drop" if {
    some s in input.sql.statements
    s.kind == "drop"
}
"""

#: Allows everything: a malformed request that reached the rules would be allowed.
ALLOW_ALL = "package open\n\ndefault allow := true\n"

GROUP_RULE = """package g

deny contains "agents may not drop" if {
    "agents" in input.subject.groups
    some s in input.sql.statements
    s.kind == "drop"
}

default allow := true
"""

FUZZ = settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _policy_dir(tmp_path: Path, text: str = DENY_DROP, name: str = "p.guard") -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / name).write_text(text, encoding="utf-8")
    return rules


@pytest.fixture(scope="module")
def open_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    rules = tmp_path_factory.mktemp("open")
    (rules / "open.guard").write_text(ALLOW_ALL, encoding="utf-8")
    return Engine(load_policy(rules))


def _codes(exc: PolicyErrors) -> set[tuple[str, str]]:
    return {(e.code, e.path) for e in exc.errors}


# ── policy paths ─────────────────────────────────────────────────────────────────────


def test_unreadable_policy_subdirectory_is_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = _policy_dir(tmp_path)
    locked = rules / "locked"
    locked.mkdir()
    (locked / "deny.guard").write_text(DENY_DROP.replace("package p", "package locked"))
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # the process may not list `locked` (root may)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(PolicyErrors) as info:
        load_policy(rules)
    assert _codes(info.value) == {("io_error", str(locked))}


def test_dangling_guard_symlink_is_a_load_error(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    link = rules / "gone.guard"
    link.symlink_to(tmp_path / "nowhere.guard")
    with pytest.raises(PolicyErrors) as info:
        load_policy(rules)
    assert _codes(info.value) == {("io_error", str(link))}


def test_dangling_symlink_named_directly_is_a_load_error(tmp_path: Path) -> None:
    link = tmp_path / "gone.guard"
    link.symlink_to(tmp_path / "nowhere.guard")
    with pytest.raises(PolicyErrors) as info:
        load_policy(link)
    assert _codes(info.value) == {("io_error", str(link))}


def test_dangling_directory_symlink_is_a_load_error(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    link = rules / "more"
    link.symlink_to(tmp_path / "no-such-dir", target_is_directory=True)
    with pytest.raises(PolicyErrors) as info:
        load_policy(rules)
    assert _codes(info.value) == {("io_error", str(link))}


def test_symlinked_rule_directory_is_loaded(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "s.guard").write_text(DENY_DROP.replace("package p", "package shared"))
    (rules / "shared").symlink_to(shared, target_is_directory=True)
    assert load_policy(rules).packages == ("p", "shared")


def test_symlink_loop_is_a_load_error(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    (rules / "loop").symlink_to(rules, target_is_directory=True)
    with pytest.raises(PolicyErrors) as info:
        load_policy(rules)
    assert _codes(info.value) == {("symlink_loop", str(rules / "loop"))}


def test_directory_linked_twice_is_loaded_once(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    shared = rules / "shared"
    shared.mkdir()
    (shared / "s.guard").write_text(DENY_DROP.replace("package p", "package shared"))
    (rules / "again").symlink_to(shared, target_is_directory=True)
    policy = load_policy(rules)
    assert policy.packages == ("p", "shared")
    assert len(policy.files) == 2


def test_special_file_named_guard_is_a_load_error(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    fifo = rules / "pipe.guard"
    os.mkfifo(fifo)
    with pytest.raises(PolicyErrors) as info:
        load_policy(rules)
    assert _codes(info.value) == {("io_error", str(fifo))}


def test_every_unreadable_path_is_reported_at_once(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    (rules / "a.guard").symlink_to(tmp_path / "x")
    (rules / "b.guard").symlink_to(tmp_path / "y")
    with pytest.raises(PolicyErrors) as info:
        load_policy([rules, tmp_path / "missing"])
    assert _codes(info.value) == {
        ("io_error", str(rules / "a.guard")),
        ("io_error", str(rules / "b.guard")),
        ("io_error", str(tmp_path / "missing")),
    }


def test_walker_lists_tests_only_when_asked(tmp_path: Path) -> None:
    rules = _policy_dir(tmp_path)
    (rules / "p_test.guard").write_text("package p_test\n")
    assert find_policy_files([rules]) == [rules / "p.guard"]
    assert find_policy_files([rules], tests=True) == [rules / "p.guard", rules / "p_test.guard"]


def test_utf8_bom_in_policy_file_is_accepted(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "p.guard").write_bytes(b"\xef\xbb\xbf" + DENY_DROP.encode())
    engine = Engine(load_policy(rules))
    assert engine.check(SqlRequest("DROP TABLE t")).effect is Effect.DENY


# ── constructors ─────────────────────────────────────────────────────────────────────


def test_subject_groups_string_is_not_a_set_of_characters() -> None:
    with pytest.raises(FieldError) as info:
        Subject("a", groups="agents")  # type: ignore[arg-type]
    assert (info.value.code, info.value.field) == ("type_error", "subject.groups")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)


def test_subject_groups_string_never_bypasses_a_group_rule(tmp_path: Path) -> None:
    engine = Engine(load_policy(_policy_dir(tmp_path, GROUP_RULE)))
    decision = engine.check(SqlRequest("DROP TABLE t"), subject={"id": "a", "groups": "agents"})
    assert decision.effect is Effect.DENY
    assert [(e.code, e.message.split(":")[0]) for e in decision.errors] == [("invalid_request", "`subject.groups`")]


@pytest.mark.parametrize("bad", ["agents", b"agents", {"agents": True}, 3, [1], ["a", None]])
def test_subject_groups_of_the_wrong_type_are_rejected(bad: Any) -> None:
    with pytest.raises(FieldError) as info:
        Subject("a", groups=bad)
    assert info.value.field == "subject.groups"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda bad: Subject("a", claims=bad), "subject.claims"),
        (lambda bad: Resource(tags=bad), "resource.tags"),
        (lambda bad: HttpRequest("GET", "/", query=bad), "http.query"),
        (lambda bad: Resource(schema=bad), "resource.schema"),
    ],
)
@pytest.mark.parametrize("bad", ["k=v", ["k", "v"], [["k", "v"]], 5, None, {1: "v"}])
def test_claims_tags_query_as_string_or_list_are_a_clear_error(build: Any, field: str, bad: Any) -> None:
    if bad is None and field == "resource.schema":
        return  # no schema is the default
    with pytest.raises(FieldError) as info:
        build(bad)
    assert (info.value.code, info.value.field) == ("type_error", field)


@pytest.mark.parametrize(
    ("subject", "resource", "request_", "field"),
    [
        ({"id": "a", "claims": "role=admin"}, None, SqlRequest("SELECT 1"), "subject.claims"),
        ({"id": "a", "claims": [["role", "admin"]]}, None, SqlRequest("SELECT 1"), "subject.claims"),
        (None, {"tags": "pii"}, SqlRequest("SELECT 1"), "resource.tags"),
        (None, {"tags": ["pii"]}, SqlRequest("SELECT 1"), "resource.tags"),
        (None, {"dialect": 5}, SqlRequest("SELECT 1"), "resource.dialect"),
        ({"id": 7}, None, SqlRequest("SELECT 1"), "subject.id"),
        ({"id": "a", "role": "x"}, None, SqlRequest("SELECT 1"), "subject.role"),
    ],
)
def test_malformed_request_parts_are_a_deny_naming_the_field(
    open_engine: Engine, subject: Any, resource: Any, request_: Any, field: str
) -> None:
    decision = open_engine.check(request_, subject=subject, resource=resource)
    assert decision.effect is Effect.DENY
    (error,) = decision.errors
    assert error.code == "invalid_request"
    assert error.message.startswith(f"`{field}`")


def test_dialect_5_is_a_clear_error(open_engine: Engine) -> None:
    with pytest.raises(FieldError) as info:
        SqlRequest("SELECT 1", 5)  # type: ignore[arg-type]
    assert (info.value.code, info.value.field) == ("type_error", "dialect")
    with pytest.raises(FieldError) as info:
        Resource(dialect=5)  # type: ignore[arg-type]
    assert info.value.field == "resource.dialect"
    decision = open_engine.check(SqlRequest("SELECT 1"), resource={"dialect": 5})
    assert [e.code for e in decision.errors] == ["invalid_request"]
    assert "AttributeError" not in decision.errors[0].message


def test_request_of_the_wrong_type_is_denied(open_engine: Engine) -> None:
    for bad in (None, 5, {"sql": "SELECT 1"}, b"SELECT 1"):
        decision = open_engine.check(bad)  # type: ignore[arg-type]
        assert decision.effect is Effect.DENY
        assert [e.code for e in decision.errors] == ["invalid_request"]


def test_request_texts_must_be_strings() -> None:
    for build, field in (
        (lambda: SqlRequest(b"SELECT 1"), "sql"),  # type: ignore[arg-type]
        (lambda: CommandRequest(["rm", "-rf", "/"]), "command"),  # type: ignore[arg-type]
        (lambda: HttpRequest("GET", 5), "http.path"),  # type: ignore[arg-type]
    ):
        with pytest.raises(FieldError) as info:
            build()
        assert info.value.field == field


def test_from_dict_is_strict() -> None:
    assert Subject.from_dict({"id": "a", "groups": ["x"], "claims": {"k": 1}}) == Subject("a", frozenset({"x"}))
    assert Resource.from_dict({}) == Resource()
    assert HttpRequest.from_dict({"path": "/api"}) == HttpRequest("GET", "/api")
    with pytest.raises(FieldError) as info:
        Resource.from_dict({"nmae": "db"})
    assert (info.value.code, info.value.field) == ("unknown_field", "resource.nmae")
    assert "did you mean `name`?" in info.value.message
    with pytest.raises(FieldError) as info:
        Subject.from_dict(["a"])
    assert (info.value.code, info.value.field) == ("type_error", "subject")


def test_field_errors_never_quote_the_value() -> None:
    with pytest.raises(FieldError) as info:
        Subject("a", groups="secret-token-123")  # type: ignore[arg-type]
    assert "secret-token-123" not in str(info.value)


def test_session_document_is_strict() -> None:
    assert session_document("s", 5)["tables_touched"] == frozenset()
    assert session_document("s", 5, denied=2)["denied"] == 2
    with pytest.raises(FieldError) as info:
        session_document("s", 5, tables_touched="users")
    assert info.value.field == "session.tables_touched"
    with pytest.raises(FieldError):
        session_document("s", 5, denied=True)
    with pytest.raises(FieldError):
        session_document("s", 5, deny=1)


# ── check_many ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("items", [None, 5, "SELECT 1", b"x", {"a": 1}])
def test_check_many_none_never_raises(open_engine: Engine, items: Any) -> None:
    (decision,) = open_engine.check_many(items)
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["invalid_request"]


def test_check_many_malformed_items_are_denied_one_by_one(open_engine: Engine) -> None:
    items: list[Any] = [
        (SqlRequest("SELECT 1"), "a", None, None),
        None,
        (SqlRequest("SELECT 1"),),
        (SqlRequest("SELECT 1"), {"groups": "agents"}, None, None),
        (SqlRequest("SELECT 1"), "a", None, 5),
        (SqlRequest("SELECT 2"), "a", None, "s"),
    ]
    decisions = open_engine.check_many(items)
    assert [d.effect for d in decisions] == [Effect.ALLOW, Effect.DENY, Effect.DENY, Effect.DENY, Effect.DENY, Effect.ALLOW]
    assert [d.errors[0].code for d in decisions[1:5]] == ["invalid_request"] * 4


def test_check_many_with_a_log_never_raises(tmp_path: Path) -> None:
    from subguard.log import open_log

    rules = tmp_path / "open"
    rules.mkdir()
    (rules / "open.guard").write_text(ALLOW_ALL)
    engine = Engine(load_policy(rules), log=open_log("memory://"))
    assert [d.effect for d in engine.check_many(None)] == [Effect.DENY]  # type: ignore[arg-type]
    decisions = engine.check_many([None, (SqlRequest("SELECT 1"), "a", None, "s"), ("x", 1, 2, 3)])  # type: ignore[list-item]
    assert [d.effect for d in decisions] == [Effect.DENY, Effect.ALLOW, Effect.DENY]


def test_check_many_iterator_that_raises_is_denied(open_engine: Engine) -> None:
    def items() -> Any:
        yield (SqlRequest("SELECT 1"), "a", None, None)
        raise OSError("source went away")

    (decision,) = open_engine.check_many(items())
    assert decision.effect is Effect.DENY


def test_fail_closed_decisions_are_logged_without_values(open_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="subguard"):
        open_engine.check(SqlRequest("SELECT 1"), subject={"id": "a", "claims": "password=hunter2"})
    (record,) = [r for r in caplog.records if r.name.startswith("subguard.engine")]
    assert record.levelno == logging.WARNING
    assert "invalid_request" in record.getMessage()
    assert "hunter2" not in record.getMessage()


def test_library_logger_has_a_null_handler() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("subguard").handlers)


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert subguard.__version__ == version("subguard")


# ── fuzz: the constructors and check ───────────────────────────────────────────────────

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_anything = _json | st.binary(max_size=4) | st.tuples(st.text(max_size=3)) | st.frozensets(st.text(max_size=3), max_size=3)


def _field_docs(fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from((*fields, "other"))
    return st.dictionaries(keys, _anything, max_size=4) | _anything


@FUZZ
@given(
    subject=_field_docs(Subject.FIELDS) | st.text(max_size=5),
    resource=_field_docs(Resource.FIELDS),
    request=st.builds(SqlRequest, st.text(max_size=20)) | _anything,
    session=st.none() | st.text(max_size=4) | _anything,
)
def test_fuzz_check_never_raises_and_never_allows_malformed(
    open_engine: Engine, subject: Any, resource: Any, request: Any, session: Any
) -> None:
    def well_formed() -> bool:
        try:
            from subguard.engine import request_of, resource_of, subject_of

            request_of(request), subject_of(subject), resource_of(resource), session_document(session, 0)
        except FieldError:
            return False
        return True

    ok = well_formed()
    decision = open_engine.check(request, subject=subject, resource=resource, session=session)
    if not ok:
        assert decision.effect is Effect.DENY
        assert [e.code for e in decision.errors] == ["invalid_request"]
    (batch,) = open_engine.check_many([(request, subject, resource, session)])
    assert batch.effect is decision.effect


@FUZZ
@given(groups=_anything, claims=_anything, tags=_anything, query=_anything, dialect=_anything)
def test_fuzz_constructors_raise_only_field_errors(groups: Any, claims: Any, tags: Any, query: Any, dialect: Any) -> None:
    for build in (
        lambda: Subject("a", groups=groups),
        lambda: Subject("a", claims=claims),
        lambda: Resource(tags=tags, dialect=dialect),
        lambda: HttpRequest("GET", "/", query=query),
        lambda: SqlRequest("SELECT 1", dialect),
    ):
        try:
            built = build()
        except FieldError as exc:
            assert exc.code == "type_error"
            continue
        for value in attrs_values(built):
            assert not isinstance(value, bytes)
        if isinstance(built, Subject):
            assert all(type(g) is str for g in built.groups)
            # only the Subject built from `groups` (not the one from `claims`) saw them
            assert not isinstance(groups, str) or built.groups == frozenset()


def attrs_values(value: Any) -> list[Any]:
    import attrs

    return [getattr(value, f.name) for f in attrs.fields(type(value))]


class _BrokenLog:
    """A decision log whose commit always fails."""

    def before(self, ctx: Any) -> Any:
        from subguard.engine import Preflight

        return Preflight(session=session_document(ctx.session_id, ctx.time_ns))

    def record(self, ctx: Any, decision: Any) -> Any:
        raise OSError("disk full")


def test_log_commit_failure_is_denied_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = tmp_path / "open"
    rules.mkdir()
    (rules / "open.guard").write_text(ALLOW_ALL)
    engine = Engine(load_policy(rules), log=_BrokenLog())
    with caplog.at_level(logging.WARNING, logger="subguard"):
        decision = engine.check(SqlRequest("SELECT 1"), subject="a")
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["log_unavailable"]
    (record,) = [r for r in caplog.records if r.name == "subguard.engine.engine"]
    assert record.levelno == logging.ERROR
    assert "OSError" in record.getMessage()


def test_utf8_bom_in_policy_text_is_accepted() -> None:
    from subguard.engine import policy_from_sources

    policy = policy_from_sources([("p.guard", "\ufeff" + DENY_DROP)])
    assert Engine(policy).check(SqlRequest("DROP TABLE t")).effect is Effect.DENY


# ── raw input documents (Engine.evaluate, eval --input, batch `input` lines) ───────────

ADMINS_ONLY = 'package a\n\nallow if "admins" in input.subject.groups\n'


@pytest.fixture(scope="module")
def admins_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    rules = tmp_path_factory.mktemp("admins")
    (rules / "a.guard").write_text(ADMINS_ONLY, encoding="utf-8")
    return Engine(load_policy(rules))


@pytest.mark.parametrize(
    ("groups", "expected"),
    [("xadminsx", "string"), ({"admins": 1}, "object"), (["admins", 1], None), (7, "number")],
)
def test_raw_input_groups_string_is_not_a_set_of_groups(admins_engine: Engine, groups: Any, expected: str | None) -> None:
    decision = admins_engine.evaluate({"subject": {"id": "a", "groups": groups}})
    assert decision.effect is Effect.DENY
    (error,) = decision.errors
    assert error.code == "invalid_request"
    assert error.message.startswith("`input.subject.groups")


def test_raw_input_of_the_right_types_is_decided(admins_engine: Engine) -> None:
    assert admins_engine.evaluate({"subject": {"id": "a", "groups": ["admins"]}}).effect is Effect.ALLOW
    assert admins_engine.evaluate({"subject": {"id": "a", "groups": ["ops"]}}).effect is Effect.DENY
    assert admins_engine.evaluate({"subject": {"id": "a", "groups": ["admins"]}, "sql": None}).effect is Effect.ALLOW


@pytest.mark.parametrize("document", [None, 5, "subject", ["subject"], {"subject": {"grups": ["admins"]}}])
def test_raw_input_that_is_not_an_input_document_is_denied(admins_engine: Engine, document: Any) -> None:
    decision = admins_engine.evaluate(document)
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["invalid_request"]


_input_field = st.sampled_from(["subject", "resource", "session", "request", "sql", "command", "http", "id", "groups", "tables_touched", "kind"])
_raw_documents = st.recursive(
    st.dictionaries(_input_field, _json, max_size=4),
    lambda inner: st.dictionaries(_input_field, inner | _json, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(document=_raw_documents | _json)
def test_fuzz_evaluate_never_raises_and_never_allows_mistyped(admins_engine: Engine, document: Any) -> None:
    from subguard.engine.dataschema import type_errors
    from subguard.engine.policy import INPUT_SCHEMA

    decision = admins_engine.evaluate(document)
    mistyped = not isinstance(document, dict) or bool(
        type_errors(document, INPUT_SCHEMA, INPUT_SCHEMA.root, "input", complete=False)
    )
    if mistyped:
        assert decision.effect is Effect.DENY
    if decision.effect is Effect.ALLOW:
        assert "admins" in document["subject"]["groups"]
        assert isinstance(document["subject"]["groups"], list)
