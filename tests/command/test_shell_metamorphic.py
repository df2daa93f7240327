"""Metamorphic properties of the shell packs: a refused command stays refused (denied or
held) under every wrapper, quoting, escaping and composition form; a harmless command
stays allowed under harmless composition."""

from __future__ import annotations

import shlex
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.engine import CommandRequest, Effect, Engine, Subject, load_policy
from subguard.testing import policy_files

RULES = Path(__file__).resolve().parents[2] / "rules"
AGENT = Subject("ci-bot", frozenset({"agents"}))
ENGINE = Engine(load_policy(policy_files(RULES)))

REFUSED = [
    "rm -rf /etc",
    "dd if=/dev/zero of=/dev/sda",
    "mkfs.ext4 /dev/sdb1",
    "chmod -R 000 /",
    "kubectl delete ns prod",
    "terraform destroy",
    "psql -c 'DROP TABLE users'",
    "dropdb app",
    "systemctl stop postgresql",
]
HARMLESS = ["ls -la /etc", "git status", "kubectl get pods -n prod", "cat /etc/hosts", "echo hello"]


def _quote_word(word: str, style: int) -> str:
    if style == 0:
        return shlex.quote(word)
    if style == 1:
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'
    if style == 2:
        return "$'" + "".join(f"\\x{ord(c):02x}" for c in word) + "'"
    if style == 3:
        return "".join("\\" + c if c.isalnum() else shlex.quote(c) for c in word)
    return word[:1] + "''" + word[1:] if len(word) > 1 and word.isalnum() else shlex.quote(word)


def _requote(text: str, style: int) -> str:
    return " ".join(_quote_word(w, style) for w in shlex.split(text))


WRAPPERS = [
    lambda t: f"sudo {t}",
    lambda t: f"sudo -u root -- {t}",
    lambda t: f"env A=1 {t}",
    lambda t: f"nice -n 5 {t}",
    lambda t: f"timeout 30 {t}",
    lambda t: f"nohup {t}",
    lambda t: f"time {t}",
    lambda t: f"busybox {t}" if not t.startswith(("kubectl", "terraform", "psql", "systemctl", "dropdb")) else f"command {t}",
    lambda t: f"bash -c {shlex.quote(t)}",
    lambda t: f"sh -c {shlex.quote(t)}",
    lambda t: f"su root -c {shlex.quote(t)}",
    lambda t: f"eval {shlex.quote(t)}",
    lambda t: f"echo {shlex.quote(t)} | bash",
    lambda t: f"bash <<'EOF'\n{t}\nEOF",
    lambda t: f"bash <<< {shlex.quote(t)}",
    lambda t: f"ssh prod {shlex.quote(t)}",
    lambda t: f"docker exec -i web sh -c {shlex.quote(t)}",
    lambda t: f"ls; {t}",
    lambda t: f"true && {t}",
    lambda t: f"false || {t}",
    lambda t: f"ls | {t}",
    lambda t: f"({t})",
    lambda t: f"{{ {t}; }}",
    # a space after `$(`: `$((…))` would be arithmetic to every shell, not a substitution
    lambda t: f"echo $( {t})",
    lambda t: f"echo `{t}`",
    lambda t: f"if true; then {t}; fi",
    lambda t: f"ls\n{t}",
]
HARMLESS_COMPOSITION = [
    lambda t: f"{t}; ls",
    lambda t: f"{t} && pwd",
    lambda t: f"{t} | grep x",
    lambda t: f"{t} 2>/dev/null",
    lambda t: f"timeout 10 {t}",
    lambda t: f"env LANG=C {t}",
    lambda t: f"true && ({t})",
    lambda t: f"bash -c {shlex.quote(t)}",
]


def _effect(text: str) -> Effect:
    return ENGINE.check(CommandRequest(text), subject=AGENT).effect


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(REFUSED),
    st.lists(st.sampled_from(range(len(WRAPPERS))), max_size=3),
    st.integers(0, 5),
)
def test_a_refused_command_stays_refused(command: str, wrappers: list[int], quoting: int) -> None:
    base = _effect(command)
    assert base in (Effect.DENY, Effect.APPROVE)
    text = _requote(command, quoting) if quoting < 5 else command
    for index in wrappers:
        text = WRAPPERS[index](text)
    assert _effect(text) in (Effect.DENY, Effect.APPROVE), text


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(HARMLESS), st.lists(st.sampled_from(range(len(HARMLESS_COMPOSITION))), max_size=2))
def test_a_harmless_command_stays_allowed(command: str, forms: list[int]) -> None:
    text = command
    for index in forms:
        text = HARMLESS_COMPOSITION[index](text)
    assert _effect(text) is Effect.ALLOW, text
