"""`subguard mcp` on bad input: one clear line and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from subguard.cli import main

from .conftest import RULES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", str(RULES)], "give either `-- SERVER [ARGS...]` or --upstream-url URL"),
        (["--rules", str(RULES), "--upstream-url", "http://x/mcp", "--", "server"], "give either"),
        (["--", "server"], "no rules"),
        (["--rules", str(RULES), "--sql-tool", "query", "--", "server"], "`query` is not TOOL:ARG"),
        (["--rules", str(RULES), "--command-tool", ":cmd", "--", "server"], "`:cmd` is not TOOL:ARG"),
        (["--rules", str(RULES), "--listen", "localhost", "--", "server"], "`localhost` is not HOST:PORT"),
        (["--rules", str(RULES), "--listen", "127.0.0.1:70000", "--", "server"], "is not HOST:PORT"),
        (["--rules", str(RULES), "--listen", "127.0.0.1:8765", "--", "server"], "--listen needs token keys"),
        (["--rules", str(RULES), "--approval-timeout", "-1", "--", "server"], "--approval-timeout"),
        (["--rules", "/no/such/rules", "--", "server"], "io_error"),
        (["--rules", str(RULES), "--", "/no/such/server"], "cannot be started or reached"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["mcp", *args], input="")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[mcp]\nbogus = 1\n", "`mcp.bogus` is not an MCP setting"),
        ("[mcp]\nrules = 3\n", "`mcp.rules` must be a list of strings"),
        ("[mcp]\napproval_timeout = -5\n", "`mcp.approval_timeout` must be a number"),
        ("[mcp.resource]\nflavour = 'x'\n", "`mcp.resource.flavour` is not a resource setting"),
        ("[mcp\n", "Expected"),
    ],
)
def test_bad_configuration_is_one_line_and_status_2(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "subguard.toml"
    config.write_text(toml)
    result = CliRunner().invoke(main, ["mcp", "--rules", str(RULES), "--config", str(config), "--", "server"], input="")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
