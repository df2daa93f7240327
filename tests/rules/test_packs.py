"""The bundled packs as a whole: canonical formatting, and the README's quick-start
decisions under `rules/`."""

from __future__ import annotations

from pathlib import Path

from subguard.engine import load_policy
from subguard.testing import policy_files

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_the_packs_are_formatted() -> None:
    from click.testing import CliRunner

    from subguard.cli import main

    result = CliRunner().invoke(main, ["fmt", "--check", str(RULES)])
    assert result.exit_code == 0, result.output


def test_the_quick_start_decisions() -> None:
    from subguard.engine import Effect, Engine, SqlRequest

    engine = Engine(load_policy(policy_files(RULES)))
    assert engine.check(SqlRequest("DELETE FROM users")).effect is Effect.APPROVE
    hidden = engine.check(SqlRequest("WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x"))
    assert hidden.effect in (Effect.APPROVE, Effect.DENY)
    assert engine.check(SqlRequest("DROP TABLE users")).effect is Effect.DENY
    assert engine.check(SqlRequest("SELECT 1")).effect is Effect.ALLOW
