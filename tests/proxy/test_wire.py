"""The codec and the row masker without a server: framing bounds, malformed bodies,
DataRow rewriting in text and binary formats."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subguard.adapters._masking import MaskPlan, strategy
from subguard.adapters.postgres import wire
from subguard.adapters.postgres.results import (
    Masker,
    Owed,
    Portal,
    Prepared,
    ResultTracker,
    parse_tag,
    translate,
)
from subguard.adapters.postgres.session import _is_loopback


def test_framing_cuts_whole_messages_across_chunks() -> None:
    stream = wire.query_message("SELECT 1") + wire.message(b"S") + wire.query_message("SELECT 2")
    buffer = wire.MessageBuffer(1024)
    got = []
    for i in range(0, len(stream), 3):
        buffer.feed(stream[i : i + 3])
        got.extend((k, bytes(b)) for k, b, _ in buffer.messages())
    assert got == [(b"Q", b"SELECT 1\0"), (b"S", b""), (b"Q", b"SELECT 2\0")]


@pytest.mark.parametrize("length", [0, 3, 2000])
def test_framing_refuses_lengths_out_of_bounds(length: int) -> None:
    buffer = wire.MessageBuffer(1024)
    buffer.feed(b"Q" + struct.pack("!i", length))
    with pytest.raises(wire.ProtocolViolation):
        list(buffer.messages())


@given(st.binary(max_size=64))
def test_parsers_raise_only_protocol_violations(body: bytes) -> None:
    for parse in (wire.query, wire.parse_parse, wire.parse_bind, wire.parse_close_or_describe, wire.parse_execute, wire.parse_data_row, wire.parse_row_description):
        with contextlib.suppress(wire.ProtocolViolation):
            parse(body)


def test_bind_keeps_formats_never_values() -> None:
    body = b"p\0s\0" + struct.pack("!hh", 1, 1) + struct.pack("!h", 1) + struct.pack("!i", 3) + b"abc" + struct.pack("!hh", 1, 1)
    bind = wire.parse_bind(body)
    assert (bind.portal, bind.statement, bind.result_formats) == ("p", "s", (1,))
    assert "abc" not in repr(bind)


def test_startup_parameters() -> None:
    packet = wire.startup_message({"user": "a", "database": "b"})
    assert wire.parse_startup(packet[4:]) == (wire.PROTOCOL_3, {"user": "a", "database": "b"})
    with pytest.raises(wire.ProtocolViolation):
        wire.parse_startup(packet[4:-1])


def _plan(*specs: str | None) -> MaskPlan:
    key = b"k" * 32
    return MaskPlan(tuple(None if s is None else strategy(s, key, direct=True) for s in specs), ())


def test_masker_text_and_binary_keep_wire_types_valid() -> None:
    fields = (wire.Field("id", 23, 0), wire.Field("email", 25, 0), wire.Field("age", 23, 0), wire.Field("ssn", 1043, 0))
    plan = _plan(None, "email", "redact", "partial:4")
    row = wire.data_row([b"1", b"ann@example.com", b"44", b"123-45-6789"])[5:]
    text = Masker(plan, fields, (), "UTF8").row(row)
    assert wire.parse_data_row(text[5:]) == [b"1", b"****@example.com", None, b"****6789"]
    binary_row = wire.data_row([struct.pack("!i", 1), b"ann@example.com", struct.pack("!i", 44), b"123-45-6789"])[5:]
    masked = Masker(plan, fields, (1,), "UTF8").row(binary_row)
    assert wire.parse_data_row(masked[5:]) == [struct.pack("!i", 1), b"****@example.com", None, b"****6789"]


def test_masker_refuses_rows_of_another_width() -> None:
    masker = Masker(_plan(None, "redact"), (wire.Field("a", 25, 0), wire.Field("b", 25, 0)), (), "UTF8")
    with pytest.raises(wire.ProtocolViolation):
        masker.row(wire.data_row([b"x"])[5:])


def test_loopback() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("")
    assert not _is_loopback("10.0.0.5") and not _is_loopback("example.com")


# -- results: asynchronous messages and completions ----------------------------------------


def _feed(tracker: ResultTracker, data: bytes) -> list[bytes | None]:
    buffer = wire.MessageBuffer(1 << 20)
    buffer.feed(data)
    out = []
    for kind, body, whole in buffer.messages():
        piece, fatal = translate(tracker, kind, body, whole)
        assert fatal is None
        out.append(piece)
    return out


_NOTIFICATION = wire.message(b"A", struct.pack("!i", 42) + b"jobs\0payload\0")
_NOTICE = wire.notice_response("01000", "hello")
_STATUS = wire.parameter_status("TimeZone", "UTC")


@pytest.mark.parametrize("owed", [None, Owed("Q", None, swallow=True), Owed("E", None), Owed("S")])
def test_notifications_notices_and_parameter_status_pass_at_any_time(owed: Owed | None) -> None:
    tracker = ResultTracker()
    if owed is not None:
        tracker.push(owed)
    data = _NOTIFICATION + _NOTICE + _STATUS
    assert _feed(tracker, data) == [_NOTIFICATION, _NOTICE, _STATUS]
    assert list(tracker.owed) == ([] if owed is None else [owed])  # nothing owed was settled


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("SELECT 3", ("SELECT", 3)),
        ("UPDATE 2", ("UPDATE", 2)),
        ("INSERT 0 5", ("INSERT", 5)),
        ("CREATE TABLE", ("CREATE TABLE", None)),
        ("LISTEN", ("LISTEN", None)),
        ("BEGIN", ("BEGIN", None)),
        ("select 'x' 4", (None, None)),
    ],
)
def test_completion_tags_give_words_and_counts(tag: str, expected: tuple[str | None, int | None]) -> None:
    assert parse_tag(tag.encode() + b"\0") == expected


def test_a_simple_query_reports_each_statement_and_its_error_code_only() -> None:
    seen: list[tuple[Any, ...]] = []
    tracker = ResultTracker()
    tracker.on_complete = lambda p, i, outcome, command, rows, ms, code: seen.append((p, i, outcome, command, rows, code))
    prepared = Prepared("SELECT 1; SELECT 1/0", object(), None, False)
    tracker.push(Owed("Q", prepared))
    error = wire.error_response("22012", "division by zero: 'quoted value'")
    _feed(
        tracker,
        wire.message(b"T", b"\0\0") + wire.data_row([b"1"]) + wire.command_complete("SELECT 1") + error + wire.ready_for_query(b"I"),
    )
    assert seen == [(prepared, 0, "complete", "SELECT", 1, None), (prepared, 1, "error", None, None, "22012")]


def test_a_suspended_execute_counts_the_rows_it_returned() -> None:
    seen: list[tuple[Any, ...]] = []
    tracker = ResultTracker()
    tracker.on_complete = lambda p, i, outcome, command, rows, ms, code: seen.append((outcome, rows))
    portal = Portal(Prepared("SELECT g", object(), None, False), ())
    tracker.push(Owed("E", portal))
    tracker.push(Owed("E", portal))
    _feed(tracker, wire.data_row([b"1"]) + wire.data_row([b"2"]) + wire.message(b"s") + wire.data_row([b"3"]) + wire.command_complete("SELECT 1"))
    assert seen == [("suspended", 2), ("complete", 1)]
    assert tracker.idle


def test_a_failing_completion_report_never_reaches_the_relay() -> None:
    tracker = ResultTracker()

    def broken(*_args: Any) -> None:
        raise RuntimeError("log down")

    tracker.on_complete = broken
    tracker.push(Owed("Q", Prepared("SELECT 1", object(), None, False)))
    complete = wire.command_complete("SELECT 1")
    assert _feed(tracker, complete + wire.ready_for_query(b"I")) == [complete, wire.ready_for_query(b"I")]
