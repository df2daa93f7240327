"""A request larger than `max_request_bytes` is refused `too_large` before any analysis:
rules and the log see the code, never the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import subguard
from subguard import CommandRequest, Effect, Engine, HttpRequest, SqlRequest
from subguard.cli import main
from subguard.engine import inputs as inputs_module
from subguard.engine.inputs import DEFAULT_MAX_REQUEST_BYTES
from subguard.log import open_log

OPEN = """\
package p

default allow := true
"""

TERMINATE_ON_PARSE_ERROR = """\
package p

terminate contains "unreadable request" if input.sql.parse_error != null

default allow := true
"""


def _engine(tmp_path: Path, text: str = OPEN, **options: Any) -> Engine:
    (tmp_path / "p.guard").write_text(text)
    return Engine(subguard.load_policy(tmp_path), **options)


def test_sql_over_the_limit_is_denied_too_large_before_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path, max_request_bytes=1000)

    def analysed(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a too-large request must not be analysed")

    monkeypatch.setattr(inputs_module, "analyze", analysed)
    decision = engine.check(SqlRequest("SELECT 1 -- " + "x" * 2000), subject="bot")
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["too_large"]
    assert decision.reasons[0].rule == "too_large"
    assert decision.input["sql"]["statements"][0]["kind"] == "unparseable"
    assert "too large" in decision.input["sql"]["parse_error"]


def test_a_10mb_command_line_is_denied_too_large(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    decision = engine.check(CommandRequest("echo " + "a" * 10_000_000), subject="bot")
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["too_large"]
    assert decision.input["command"]["program"] == ""


def test_an_http_path_over_the_limit_is_denied_too_large(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_request_bytes=100)
    decision = engine.check(HttpRequest("GET", "/" + "a" * 200), subject="bot")
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["too_large"]


def test_the_limit_counts_utf8_bytes_and_is_inclusive(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_request_bytes=100)
    # "é" is two bytes: 11 + 44 * 2 = 99 bytes, then 101 with one more
    at_limit = "SELECT 1 --" + "é" * 44 + "x"
    assert len(at_limit.encode()) == 100
    assert engine.check(SqlRequest(at_limit)).effect is Effect.ALLOW
    over = engine.check(SqlRequest(at_limit + "x"))
    assert [e.code for e in over.errors] == ["too_large"]


def test_rules_see_a_too_large_request_as_a_parse_error(tmp_path: Path) -> None:
    engine = _engine(tmp_path, TERMINATE_ON_PARSE_ERROR, max_request_bytes=64)
    decision = engine.check(SqlRequest("SELECT " + "1, " * 100 + "1"))
    assert decision.effect is Effect.TERMINATE  # a stronger rule's effect stays
    assert "too_large" in [e.code for e in decision.errors]


def test_too_large_request_text_never_reaches_the_log(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    log = open_log(f"sqlite:///{tmp_path}/log.db")
    try:
        engine = _engine(tmp_path / "rules", log=log, max_request_bytes=512)
        secret = "hunter2-" + "s" * 600
        decision = engine.check(SqlRequest(f"SELECT '{secret}'"), subject="bot", session="s1")
        assert decision.effect is Effect.DENY
        assert [e.code for e in decision.errors] == ["too_large"]
    finally:
        log.close()
    stored = (tmp_path / "log.db").read_bytes()
    assert b"hunter2" not in stored
    assert b"too_large" in stored


def test_default_limit_is_a_few_hundred_kilobytes(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert engine.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 256 * 1024
    assert engine.check(SqlRequest("SELECT 1 -- " + "x" * 200_000)).effect is Effect.ALLOW


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", True, None])
def test_max_request_bytes_must_be_a_positive_integer(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(ValueError, match="max_request_bytes"):
        _engine(tmp_path, max_request_bytes=bad)


def test_check_many_refuses_too_large_items_one_by_one(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_request_bytes=50)
    decisions = engine.check_many(
        [(SqlRequest("SELECT 1"), "bot", None, None), (SqlRequest("SELECT 1 -- " + "x" * 80), "bot", None, None)]
    )
    assert [d.effect for d in decisions] == [Effect.ALLOW, Effect.DENY]
    assert [e.code for e in decisions[1].errors] == ["too_large"]


def test_eval_max_request_bytes_option_and_environment(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text(OPEN)
    runner = CliRunner()
    args = ["eval", "--rules", str(tmp_path), "--sql", "SELECT 1 -- padding", "--format", "jsonl"]
    by_flag = runner.invoke(main, [*args, "--max-request-bytes", "8"])
    assert by_flag.exit_code == 0 and '"code":"too_large"' in by_flag.output
    by_env = runner.invoke(main, args, env={"SUBGUARD_MAX_REQUEST_BYTES": "8"})
    assert by_env.exit_code == 0 and '"code":"too_large"' in by_env.output
    bad = runner.invoke(main, args, env={"SUBGUARD_MAX_REQUEST_BYTES": "-1"})
    assert bad.exit_code == 2
