"""Findings about commands (fail-open seams and secrets in the log), one test each, named
after the finding."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from subguard.command import DEFAULT_SECRET_PATTERNS, parse_command, redact_command
from subguard.engine import CommandRequest, Effect, Engine, Subject, load_policy
from subguard.log import open_log, read_records
from subguard.testing import policy_files

RULES = Path(__file__).resolve().parents[2] / "rules"
AGENT = Subject("ci-bot", frozenset({"agents"}))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(policy_files(RULES)))


# -- fail open -------------------------------------------------------------------------


def test_nested_command_substitution_is_denied(engine: Engine) -> None:
    decision = engine.check(CommandRequest("echo $($($($($($(rm -rf /))))))"), subject=AGENT)
    assert decision.effect is Effect.DENY


def test_nested_backticks_are_denied(engine: Engine) -> None:
    decision = engine.check(CommandRequest("echo `echo \\`rm -rf /\\``"), subject=AGENT)
    assert decision.effect is Effect.DENY
    assert "rm" in [inv.program for inv in parse_command("echo `echo \\`rm -rf /\\``").pipeline]


def test_command_parse_error_is_visible_to_rules(tmp_path: Path) -> None:
    source = (
        "package t\n\ndeny contains msg if {\n    msg := input.command.parse_error\n"
        "    msg != null\n}\n\nallow if input.command.program != \"\"\n"
    )
    (tmp_path / "t.guard").write_text(source, encoding="utf-8")
    engine = Engine(load_policy(tmp_path))
    decision = engine.check(CommandRequest("echo 'unclosed"))
    assert decision.effect is Effect.DENY
    assert decision.reasons[0].message == parse_command("echo 'unclosed").parse_error
    assert engine.check(CommandRequest("echo fine")).effect is Effect.ALLOW


def test_command_parse_error_is_denied_by_the_bundled_packs(engine: Engine) -> None:
    for text in ("echo 'unclosed", "rm -rf /tmp/x )", "if true; then ls", "{rm,-rf,/}", "cat <<EOF\nx"):
        decision = engine.check(CommandRequest(text), subject=AGENT)
        assert decision.effect is Effect.DENY, text


def test_nul_in_command_is_not_part_of_program(engine: Engine) -> None:
    facts = parse_command("rm\x00 -rf /")
    assert facts.parse_error is not None and "U+0000" in facts.parse_error
    assert facts.program == "rm"
    assert engine.check(CommandRequest("rm\x00 -rf /"), subject=AGENT).effect is Effect.DENY


@pytest.mark.parametrize("char", ["\x01", "\x07", "\x1b", "\x7f", "\x0b"])
def test_control_characters_in_command_are_a_parse_error(char: str) -> None:
    assert parse_command(f"ls{char} -l").parse_error is not None


def test_command_nested_too_deeply_is_a_parse_error(engine: Engine) -> None:
    text = "sudo " * 20 + "ls"
    assert parse_command(text).parse_error == "command is nested too deeply"
    assert engine.check(CommandRequest(text), subject=AGENT).effect is Effect.DENY


# -- secrets in the log ---------------------------------------------------------------

SECRETS = [
    ("mysql_password_is_not_logged", "mysql -psecretpass -u root app", "secretpass", ["mysql", "-u", "root"]),
    ("mysql_long_password_is_not_logged", "mysql --password=secretpass app", "secretpass", ["--password"]),
    ("password_option_is_not_logged", "tool --password hunter2secret run", "hunter2secret", ["--password", "run"]),
    ("curl_authorization_header_is_not_logged", "curl -H 'Authorization: Bearer abc.def.ghi' https://api.example/x", "abc.def.ghi", ["curl", "Authorization", "https://api.example/x"]),
    ("curl_user_is_not_logged", "curl -u bob:pa55word https://api.example/x", "pa55word", ["curl", "-u"]),
    ("token_option_is_not_logged", "vault login --token=s3cr3tvalue", "s3cr3tvalue", ["--token"]),
    ("pgpassword_env_is_not_logged", "PGPASSWORD=hunter2 psql -h db -c 'SELECT 1' app", "hunter2", ["PGPASSWORD", "psql", "-h"]),
    ("exported_secret_is_not_logged", "export AWS_SECRET_ACCESS_KEY=abc123xyz; aws s3 ls", "abc123xyz", ["AWS_SECRET_ACCESS_KEY", "aws"]),
    ("url_userinfo_is_not_logged", "psql 'postgresql://app:pw0rd@db.internal/prod'", "pw0rd", ["psql", "postgresql://app:", "@db.internal/prod"]),
    ("git_remote_token_is_not_logged", "git clone https://x:glpat-abcdefghijklmnop1234@gitlab.example/a/b", "glpat-abcdefghijklmnop1234", ["git", "clone"]),
    ("sshpass_is_not_logged", "sshpass -p s3cret ssh host uptime", "s3cret", ["sshpass", "-p", "ssh", "host", "uptime"]),
    ("sshpass_attached_is_not_logged", "sshpass -ps3cret ssh host uptime", "s3cret", ["sshpass", "ssh"]),
    ("sudo_stdin_password_is_not_logged", "echo hunter2 | sudo -S systemctl restart nginx", "hunter2", ["echo", "sudo", "-S", "systemctl"]),
    ("sudo_stdin_herestring_is_not_logged", "sudo -S cat /etc/shadow <<< hunter2", "hunter2", ["sudo", "/etc/shadow"]),
    ("redis_password_is_not_logged", "redis-cli -a s3cretpass -h cache ping", "s3cretpass", ["redis-cli", "-a", "cache"]),
    ("high_entropy_token_is_not_logged", "deploy --key-id Zx8Qw2Lp9Rt5Vb7Nm3Kj6Hg4 now", "Zx8Qw2Lp9Rt5Vb7Nm3Kj6Hg4", ["deploy", "now"]),
    ("aws_key_is_not_logged", "echo AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP", ["echo"]),
    ("secret_in_nested_shell_is_not_logged", "bash -c 'mysql -psecretpass -e \"select 1\"'", "secretpass", ["bash", "mysql"]),
    ("secret_behind_ssh_is_not_logged", "ssh db 'PGPASSWORD=hunter2 psql app'", "hunter2", ["ssh", "psql"]),
]


@pytest.mark.parametrize(("name", "text", "secret", "kept"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secrets_are_redacted(name: str, text: str, secret: str, kept: list[str]) -> None:
    redacted = redact_command(text)
    assert secret not in redacted, redacted
    for part in kept:
        assert part in redacted, (part, redacted)


def test_secrets_never_reach_the_log() -> None:
    log = open_log("memory://")
    engine = Engine(load_policy(policy_files(RULES)), log=log)
    for _name, text, _secret, _kept in SECRETS:
        engine.check(CommandRequest(text), subject=AGENT)
    stored = b"".join(orjson.dumps(r.state, default=str) for r in read_records(log.store))
    assert stored
    for _name, _text, secret, _kept in SECRETS:
        assert secret.encode() not in stored, secret


def test_redaction_keeps_programs_options_and_paths() -> None:
    text = "rm -rf /var/lib/app && kubectl delete pod x -n prod --grace-period=0"
    assert redact_command(text) == text


def test_secret_patterns_are_configurable() -> None:
    text = "deploy --ticket CORP-INTERNAL-42 now"
    assert redact_command(text) == text
    custom = (*DEFAULT_SECRET_PATTERNS, r"CORP-INTERNAL-\d+")
    assert "CORP-INTERNAL-42" not in redact_command(text, custom)
    log = open_log("memory://")
    engine = Engine(load_policy(policy_files(RULES)), log=log, secret_patterns=custom)
    engine.check(CommandRequest(text), subject=AGENT)
    stored = b"".join(orjson.dumps(r.state, default=str) for r in read_records(log.store))
    assert b"CORP-INTERNAL-42" not in stored and b"deploy" in stored


def test_redaction_never_raises_on_malformed_text() -> None:
    for text in ("mysql -psecret 'unclosed", "\x00", "$(", "a" * 10000, "PGPASSWORD='x"):
        assert isinstance(redact_command(text), str)



@pytest.mark.parametrize(
    "word",
    ["a", "eyJ", "x://", "ab:/"],
)
def test_redaction_is_linear_in_the_text(word: str) -> None:
    # a secret shape matched from every position of a long run was quadratic: 256 KB of
    # `a` took 95 s through the URL-userinfo pattern, 60 KB of `eyJ` 2 s through the JWT one
    import signal

    def _too_slow(signum: int, frame: object) -> None:
        raise AssertionError("redaction did not finish in 20 s: it is not linear")

    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(20)
    try:
        text = "echo " + word * (256_000 // len(word))
        assert redact_command(text).startswith("echo ")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

def test_a_command_of_more_words_than_the_limit_is_malformed_and_still_redacted(tmp_path: Path) -> None:
    # 100,000 arguments took 1.9 s to read and redact word by word; past MAX_WORDS the text
    # is refused unread, and what was not read is redacted piece by piece
    from subguard.command._syntax import MAX_WORDS

    secret = "x9F2kLq8ZmP3vR7tY1wB5nH0jD4sQ6uE"
    text = "ls " + "a " * (MAX_WORDS + 10) + secret + " AKIAIOSFODNN7EXAMPLE"
    facts = parse_command(text)
    assert facts.parse_error is not None and "too complex" in facts.parse_error
    redacted = redact_command(text)
    assert secret not in redacted and "AKIAIOSFODNN7EXAMPLE" not in redacted
    assert parse_command("ls " + "a " * (MAX_WORDS - 10)).parse_error is None
    (tmp_path / "p.guard").write_text(
        'package p\n\ndefault allow := true\n\ndeny contains "unreadable" if input.command.parse_error != null\n'
    )
    decision = Engine(load_policy(tmp_path)).check(CommandRequest(text))
    assert decision.effect is Effect.DENY


# -- fuzz: no traceback, no hang, no allow on malformed input ----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_shellish = st.text(alphabet=st.sampled_from(list("rm -f/'\"\\|&;()<>{}$`#\n\t=*?~,.x\x00\x1b")), max_size=60)


@settings(max_examples=200, deadline=2000)
@given(_shellish)
def test_fuzz_command_lines_never_raise_and_malformed_is_never_allowed(text: str) -> None:
    facts = parse_command(text)
    assert isinstance(redact_command(text), str)
    decision = _FUZZ_ENGINE.check(CommandRequest(text), subject=AGENT)
    if facts.parse_error is not None:
        assert decision.effect is Effect.DENY, (text, facts.parse_error)


_FUZZ_ENGINE = Engine(load_policy(policy_files(RULES)))
