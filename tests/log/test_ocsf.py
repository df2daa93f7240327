"""`export --format ocsf` events validate against the OCSF schema of the version they name.

The class schema (API Activity, 6003, with the profiles the event declares) is generated
offline by `ocsf-json-schema` from the OCSF schema export it packages (Apache-2.0, see
its `ocsf/LICENSE.txt`) and checked with `jsonschema`; no network at test time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import click
import jsonschema
import ocsf_json_schema
import orjson
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.cli.log_commands import register
from subguard.engine.types import Effect
from subguard.log import LogRecord, Topic, ocsf_event, open_log, read_records

from .conftest import make_ctx, make_decision


@cache
def validator(version: str, profiles: tuple[str, ...]) -> Any:
    ocsf = ocsf_json_schema.OcsfJsonSchemaEmbedded(
        ocsf_json_schema.get_ocsf_schema(version=version)
    )
    schema = ocsf.get_class_schema(ocsf.lookup_class_name_from_uid(6003), profiles=list(profiles))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def problems(event: dict[str, Any]) -> list[str]:
    metadata = event["metadata"]
    check = validator(metadata["version"], tuple(metadata.get("profiles", ())))
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(event))


def _cli() -> click.Group:
    @click.group()
    def group() -> None:
        pass

    register(group)
    return group


def test_ocsf_export_validates_against_the_ocsf_schema(sqlite_url: str) -> None:
    log = open_log(sqlite_url)
    try:
        for effect in Effect:
            log.record(make_ctx(session="s1"), make_decision(effect, f"because {effect}"))
        log.record(make_ctx(session=None), make_decision(Effect.DENY, "outside a session"))
        log.record(make_ctx(session="s2", text=""), make_decision(Effect.ALLOW))
    finally:
        log.close()
    result = CliRunner().invoke(_cli(), ["export", "--store", sqlite_url, "--format", "ocsf"])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.output.splitlines()]
    assert len(events) == len(Effect) + 2
    for event in events:
        assert problems(event) == [], event


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "effect": st.sampled_from([*(e.value for e in Effect), "bogus"]),
            "kind": st.sampled_from(["sql", "command", "http", ""]),
            "subject": st.one_of(st.none(), st.text(max_size=8)),
            "session": st.one_of(st.none(), st.text(max_size=8)),
            "decision": st.one_of(st.none(), st.uuids().map(str)),
            "resource": st.one_of(st.none(), st.text(max_size=8)),
            "text": st.one_of(st.none(), st.text(max_size=20)),
            "at": st.just("2026-11-30T01:02:03.123456789Z"),
        },
    ),
    st.integers(0, 2**40),
)
def test_ocsf_event_is_valid_for_any_recorded_state(state: dict[str, Any], position: int) -> None:
    """Whatever a DecisionRecorded row holds (missing or null fields included), the event
    is valid OCSF: a SIEM never rejects an export line."""
    import uuid

    record = LogRecord(position, uuid.uuid4(), 1, Topic.DECISION_RECORDED, state)
    assert problems(ocsf_event(record)) == []


def test_ocsf_of_a_real_store_record(sqlite_url: str) -> None:
    log = open_log(sqlite_url)
    try:
        log.record(make_ctx(), make_decision(Effect.APPROVE, "hold"))
        store = log.store
        [record] = list(read_records(store, topics=[Topic.DECISION_RECORDED]))
        event = ocsf_event(record)
    finally:
        log.close()
    assert problems(event) == []
    assert event["disposition"] == "Held" and event["unmapped"]["effect"] == "approve"
