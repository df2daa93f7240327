"""Fuzzed store rows and anchors: `verify` and the readers never raise anything but a
`LogError`, never hang, and never call a mutated log intact."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.engine.types import Effect
from subguard.errors import LogError
from subguard.log import Anchor, open_log, open_store, read_records, verify_store

from .conftest import make_ctx, make_decision

FUZZ = settings(
    max_examples=60,
    deadline=5000,  # a hang shows; a loaded CI machine does not
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: Any) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("fuzz") / "pristine.db"
    log = open_log(f"sqlite:///{path}")
    try:
        for i in range(5):
            log.record(make_ctx(session=f"s{i % 2}"), make_decision(Effect.DENY, "no"))
        log.record(make_ctx(session="s1"), make_decision(Effect.APPROVE, "hold"))
    finally:
        log.close()
    conn = sqlite3.connect(path)
    try:
        # everything in the main file, so that copying it copies the whole log
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        rows = conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    finally:
        conn.close()
    return path, rows


column_values = {
    "state": st.one_of(
        st.none(),
        st.binary(max_size=200),
        st.text(max_size=50),
        st.integers(-(2**63), 2**63 - 1),
        st.just(b'{"h":"' + b"0" * 64 + b'"}'),
    ),
    "topic": st.one_of(st.none(), st.text(max_size=40), st.integers(-(2**63), 2**63 - 1)),
    "originator_version": st.one_of(st.none(), st.integers(-5, 10**6), st.text(max_size=5)),
    "originator_id": st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=16)),
}


@FUZZ
@given(data=st.data())
def test_verify_never_raises_and_never_passes_a_mutated_row(
    pristine: tuple[Path, int], tmp_path: Path, data: Any
) -> None:
    source, count = pristine
    path = tmp_path / f"case-{data.draw(st.uuids()).hex}.db"
    shutil.copy(source, path)
    column = data.draw(st.sampled_from(sorted(column_values)))
    value = data.draw(column_values[column])
    rowid = data.draw(st.integers(1, count))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        before = conn.execute(
            f"SELECT {column} FROM stored_events WHERE rowid = ?", (rowid,)
        ).fetchone()[0]
        try:
            conn.execute(f"UPDATE stored_events SET {column} = ? WHERE rowid = ?", (value, rowid))
        except sqlite3.IntegrityError:
            return  # the table's key refuses this edit: nothing to verify
    store = open_store(f"sqlite:///{path}", create=False)
    try:
        report = verify_store(store)
        if value != before and not (column == "originator_id" and str(value) == before):
            assert not report.ok, (column, value)
        with contextlib.suppress(LogError):
            for _ in read_records(store):
                pass
    finally:
        store.close()


@settings(max_examples=200, deadline=500)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_malformed_anchor_is_a_log_error(text: Any) -> None:
    with contextlib.suppress(LogError):
        Anchor.from_json(text)


@settings(max_examples=100, deadline=500)
@given(
    st.fixed_dictionaries(
        {
            "position": st.integers(-10, 10**9),
            "aggregate_id": st.text(max_size=40),
            "version": st.integers(-10, 10**6),
            "root": st.text(max_size=70),
            "events": st.integers(-10, 10**9),
        }
    )
)
def test_a_foreign_anchor_never_verifies(pristine: tuple[Path, int], anchor: dict) -> None:
    source, _ = pristine
    store = open_store(f"sqlite:///{source}", create=False)
    try:
        assert not verify_store(store, anchor=Anchor(**anchor)).ok
    finally:
        store.close()
