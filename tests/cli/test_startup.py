"""A one-shot `subguard eval`: what it imports, its cache of parsed policies, its exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from subguard.engine import load_policy
from subguard.engine.policycache import cache_dir, parse_cached
from subguard.lang import dump_module, load_module, parse_module

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = 42"


def _eval(cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SUBGUARD_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "subguard", "eval", "--rules", str(RULES), *extra],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
        timeout=120,
    )


def test_a_one_shot_eval_imports_no_log_asyncio_or_ssl(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['subguard', 'eval', '--rules', sys.argv[1], '--sql', sys.argv[2]]\n"
        "from subguard.cli import main\n"
        "try:\n    main.main(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                 ('eventsourcing', 'asyncio', 'ssl') or m.startswith('subguard.log'))\n"
        "    print('IMPORTED', bad, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(RULES), SQL],
        capture_output=True,
        text=True,
        env={**os.environ, "SUBGUARD_CACHE_DIR": str(tmp_path)},
        check=False,
        timeout=120,
    )
    assert "IMPORTED []" in proc.stderr, proc.stderr


def test_eval_output_is_complete_through_a_pipe_with_the_fast_exit(tmp_path: Path) -> None:
    first = _eval(tmp_path, "--sql", SQL, "--format", "json")
    second = _eval(tmp_path, "--sql", SQL, "--format", "json")  # from the cache
    assert first.returncode == second.returncode == 0
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["effect"] == b["effect"] == "allow"
    assert a["reasons"] == b["reasons"]
    assert list(tmp_path.glob("*.module"))


def test_a_bad_line_still_exits_2_with_the_fast_exit(tmp_path: Path) -> None:
    batch = tmp_path / "b.jsonl"
    batch.write_text('{"sql": "SELECT 1"}\nnot json\n')
    proc = _eval(tmp_path / "c", "--batch", str(batch), "--format", "jsonl")
    assert proc.returncode == 2
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0]["effect"] == "allow"
    assert lines[1]["error"]["code"] == "parse_error"


def test_a_corrupt_or_foreign_cache_entry_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    assert _eval(tmp_path, "--sql", SQL).returncode == 0
    entries = list(tmp_path.glob("*.module"))
    assert entries
    for i, entry in enumerate(entries):
        # truncated, garbage, and a pickle naming a class outside the policy AST
        entry.write_bytes(
            [entry.read_bytes()[:40], b"\x00garbage", b"subguard-module-1\n" + _os_system()][i % 3]
        )
    proc = _eval(tmp_path, "--sql", SQL, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["effect"] == "allow"
    for entry in entries:
        assert load_module(entry.read_bytes()) is not None  # rewritten whole


def _os_system() -> bytes:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    return pickle.dumps(Evil())


def test_the_unpickler_builds_nothing_but_the_ast() -> None:
    assert load_module(b"subguard-module-1\n" + _os_system()) is None
    module = parse_module('package p\ndeny contains "no" if input.subject.id == "x"\n', "p.guard")
    assert load_module(dump_module(module)) == module
    assert load_module(b"other-format\n" + dump_module(module)[18:]) is None


def test_an_entry_another_user_could_write_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGUARD_CACHE_DIR", str(tmp_path))
    text = 'package p\ndeny contains "no" if input.subject.id == "x"\n'
    module = parse_cached(text, "p.guard")
    (entry,) = tmp_path.glob("*.module")
    other = parse_module('package p\ndeny contains "other" if true\n', "p.guard")
    entry.write_bytes(dump_module(other))
    assert parse_cached(text, "p.guard") == other  # the user's own entry is trusted
    entry.chmod(0o666)
    assert parse_cached(text, "p.guard") == module  # a world-writable one is not


def test_the_cache_can_be_turned_off_and_keys_by_path_and_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGUARD_CACHE_DIR", "")
    assert cache_dir() is None
    monkeypatch.setenv("SUBGUARD_CACHE_DIR", str(tmp_path))
    parse_cached('package p\ndeny contains "a" if true\n', "a.guard")
    parse_cached('package p\ndeny contains "a" if true\n', "b.guard")
    parse_cached('package p\ndeny contains "b" if true\n', "a.guard")
    assert len(list(tmp_path.glob("*.module"))) == 3


def test_cached_policies_decide_as_fresh_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGUARD_CACHE_DIR", str(tmp_path))
    fresh = load_policy(RULES)
    load_policy(RULES, parse_cache=True)
    cached = load_policy(RULES, parse_cache=True)
    assert cached.modules == fresh.modules
    assert cached.hash == fresh.hash


def test_a_source_that_does_not_parse_is_reported_and_never_cached(tmp_path: Path) -> None:
    rules = tmp_path / "r"
    rules.mkdir()
    (rules / "bad.guard").write_text("package p\ndeny contains if\n")
    proc = subprocess.run(
        [sys.executable, "-m", "subguard", "eval", "--rules", str(rules), "--sql", SQL],
        capture_output=True,
        text=True,
        env={**os.environ, "SUBGUARD_CACHE_DIR": str(tmp_path / "c")},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "bad.guard:2:" in proc.stderr
    assert not list((tmp_path / "c").glob("*.module"))


@pytest.mark.parametrize(
    "line",
    [
        '{"sql": "SELECT 1", "resource": {"tags": {"n": 18446744073709551616}}}',
        '{"sql": "SELECT 1", "resource": {"tags": {"n": -9223372036854775809}}}',
        '{"sql": "SELECT 1", "resource": {"tags": {"n": 1e400}}}',
        '{"sql": "SELECT 1", "resource": {"tags": {"n": NaN}}}',
        '{"sql": "SELECT 1", "resource": {"tags": {"n": "\\ud800"}}}',
        '{"sql": "SELECT 1", "resource": {"tags": {"n": 0.1}}}',
    ],
)
def test_batch_lines_are_read_as_json_reads_them(line: str) -> None:
    from subguard.cli import _loads

    got, want = _loads(line), json.loads(line)
    assert repr(got) == repr(want)
