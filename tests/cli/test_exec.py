"""`subguard exec` end to end: allowed commands run with their own status, refused ones
never start (126), and a hold granted from another process runs the command."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

RULES = str(Path(__file__).resolve().parents[2] / "rules")
SUBGUARD = [sys.executable, "-m", "subguard"]


def _make(target: Path) -> list[str]:
    """A held command (python is not on the allow-list) whose effect is visible."""
    return [sys.executable, "-c", f"open({str(target)!r}, 'w').close()"]


def _exec(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SUBGUARD, "exec", "--rules", RULES, "--store", store, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_an_allowed_command_runs_with_its_own_status_and_output(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    done = _exec(store, "--", "ls", RULES)
    assert done.returncode == 0
    assert "base.guard" in done.stdout
    failed = _exec(store, "--", "ls", str(tmp_path / "missing"))
    assert failed.returncode not in (0, 126)


def test_a_denied_command_never_starts(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    victim = tmp_path / "keep"
    victim.mkdir()
    done = _exec(store, "--shell", f"rm -rf {victim} /etc")
    assert done.returncode == 126
    assert "guard.shell.destructive.deny" in done.stderr
    assert victim.exists()


def test_a_command_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    done = _exec(f"sqlite:///{tmp_path / 'log.db'}", "--shell", "echo $(( ")
    assert done.returncode == 126


def test_a_hold_without_wait_does_not_run(tmp_path: Path) -> None:
    target = tmp_path / "made"
    done = _exec(f"sqlite:///{tmp_path / 'log.db'}", "--", *_make(target))
    assert done.returncode == 126
    assert re.search(r"subguard approve [0-9a-f-]{36}", done.stderr)
    assert not target.exists()


def test_a_hold_granted_from_another_process_runs(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    target = tmp_path / f"made-{uuid.uuid4()}"
    waiting = subprocess.Popen(
        [*SUBGUARD, "exec", "--rules", RULES, "--store", store, "--wait", "30", "--", *_make(target)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert waiting.stderr is not None
    line = waiting.stderr.readline()
    match = re.search(r"subguard approve ([0-9a-f-]{36})", line)
    assert match, line
    assert not target.exists()
    granted = subprocess.run(
        [*SUBGUARD, "approve", match.group(1), "--by", "alice", "--store", store],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert granted.returncode == 0, granted.stderr
    assert waiting.wait(timeout=60) == 0
    assert target.exists()


def test_a_refused_hold_does_not_run(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    target = tmp_path / "never"
    waiting = subprocess.Popen(
        [*SUBGUARD, "exec", "--rules", RULES, "--store", store, "--wait", "30", "--", *_make(target)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert waiting.stderr is not None
    match = re.search(r"subguard approve ([0-9a-f-]{36})", waiting.stderr.readline())
    assert match
    subprocess.run([*SUBGUARD, "reject", match.group(1), "--by", "bob", "--store", store], check=True, timeout=60)
    assert waiting.wait(timeout=60) == 126
    assert not target.exists()
