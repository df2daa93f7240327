"""`subguard demo` plays its whole story, checks it, and exits 0 well within 15 seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from subguard.cli import main; main()", "demo", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    return done, time.monotonic() - started


def test_demo_tells_its_story_and_exits_zero() -> None:
    done, elapsed = run_demo()
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 15
    assert "✗" not in done.stdout
    assert done.stdout.count("✓") >= 18
    for told in ("held for approval", "subguard approve", "DROP is never allowed", "terminate", "closed within one second", "hash chains verify"):
        assert told in done.stdout


@pytest.mark.slow
def test_demo_on_a_given_store(tmp_path: Path) -> None:
    done, _ = run_demo("--store", f"sqlite:///{tmp_path}/log.db")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "log.db").exists()
