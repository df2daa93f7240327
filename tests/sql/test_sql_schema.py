"""A malformed schema is refused with its error, never read without its tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from subguard.engine import Engine, load_policy
from subguard.engine.types import Resource, SqlRequest, Subject
from subguard.errors import ConfigError
from subguard.sql import Schema, analyze, validate_schema

RULES = Path(__file__).resolve().parents[2] / "rules"

BAD: list[tuple[Any, str]] = [
    ({"users": {"email": {"type": "text", "tags": 5}}}, "schema.users.email.tags"),
    ({"users": {"email": {"type": "text", "tags": [5]}}}, "schema.users.email.tags"),
    ({"users": {"email": {"type": "text", "tag": ["pii"]}}}, "schema.users.email"),
    ({"users": {"email": {"type": 3}}}, "schema.users.email.type"),
    ({"users": {"email": 7}}, "schema.users.email"),
    ({"users": ["email"]}, "schema.users"),
    ({"users": None}, "schema.users"),
    ({5: {"email": "text"}}, "schema"),
    (["users"], "schema"),
]


@pytest.mark.parametrize(("schema", "where"), BAD)
def test_a_malformed_schema_is_a_config_error(schema: Any, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        Schema.from_mapping(schema)
    assert str(info.value).startswith(where + ":")
    with pytest.raises(ConfigError):
        validate_schema(schema)
    with pytest.raises(ConfigError):
        Resource(kind="postgres", schema=schema)


@pytest.mark.parametrize(("schema", "where"), BAD)
def test_analyze_refuses_with_the_error(schema: Any, where: str) -> None:
    facts = analyze("SELECT email FROM users", dialect="postgres", schema=schema)
    assert [s.kind for s in facts.statements] == ["unparseable"]
    assert facts.parse_error is not None
    assert facts.parse_error.startswith(f"line 1, col 1: {where}")


def test_one_bad_column_does_not_drop_the_other_tags() -> None:
    schema = {"users": {"ssn": {"type": "text", "tags": ["pii"]}, "email": {"tags": 5}}}
    facts = analyze("SELECT ssn FROM users", dialect="postgres", schema=schema)
    assert facts.statements[0].kind == "unparseable"


def test_the_engine_denies_a_request_with_a_malformed_schema() -> None:
    engine = Engine(load_policy([RULES / "base.guard"]))
    decision = engine.check(
        SqlRequest("SELECT email FROM users"),
        subject=Subject("a", ["agents"]),
        resource={"kind": "postgres", "schema": {"users": {"email": {"tags": 5}}}},
    )
    assert decision.effect.value == "deny"


@pytest.mark.parametrize(
    "schema",
    [
        {"users": {"email": "text"}},
        {"users": {"email": {"type": "text", "tags": "pii"}}},
        {"users": {"email": {"tags": ["pii"]}}},
        {"users": {"email": {"type": None, "tags": None}}},
        {"public.users": {"email": None}},
        {},
    ],
)
def test_good_schemas_load(schema: Any) -> None:
    validate_schema(schema)
    assert Resource(kind="postgres", schema=schema).schema is schema
