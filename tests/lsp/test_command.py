"""`subguard lsp` as a command: registered lazily, pygls loaded only when it runs, and a
clear refusal when the `lsp` extra is missing."""

from __future__ import annotations

import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_listing_the_commands_loads_no_language_server_library() -> None:
    probe = (
        "import sys, click\n"
        "from subguard.cli import main\n"
        "names = main.list_commands(click.Context(main))\n"
        "assert 'lsp' in names, names\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')))\n"
    )
    result = _python(probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_pygls_the_command_says_which_extra_to_install() -> None:
    probe = (
        "import sys\n"
        "sys.modules['pygls'] = None  # as if the extra were not installed\n"
        "from subguard.cli import main\n"
        "main(['lsp'], prog_name='subguard')\n"
    )
    result = _python(probe)
    assert result.returncode == 2
    assert "pip install 'subguard[lsp]'" in result.stderr
    assert "Traceback" not in result.stderr
