"""Fixtures for the MCP guard's tests: a SQLite shop behind the SDK-written toolserver,
`subguard mcp` started by the SDK's own client, and the record of what reached the server."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import StdioServerParameters

HERE = Path(__file__).parent
RULES = HERE.parents[2] / "rules"
TOOLSERVER = HERE / "toolserver.py"

CONFIG = """
[mcp]
sql_tools = ["query:sql"]
command_tools = ["run:command"]
dialect = "sqlite"

[mcp.resource]
name = "shop"
kind = "sqlite"

[mcp.resource.schema.users]
id = "integer"
name = "text"
email = { type = "text", tags = ["pii"] }
ssn = { type = "text", tags = ["pii"] }
"""


def subguard_command() -> list[str]:
    exe = shutil.which("subguard")
    return [exe] if exe else [sys.executable, "-m", "subguard"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*subguard_command(), *args], capture_output=True, text=True, timeout=60, check=False)


class Shop:
    """One test's world: the database, the store, the configuration and the record."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "shop.db"
        self.record = root / "calls.jsonl"
        self.store = f"sqlite:///{root}/log.db"
        self.config = root / "subguard.toml"
        self.config.write_text(CONFIG)
        self.data = root / "data.json"
        self.data.write_text(json.dumps({"mcp": {"tool_groups": {"admin_reset": ["admins"]}, "file_tools": {"list_files": "path"}, "roots": [str(root)], "known_tools": ["list_files", "admin_reset"]}}))
        conn = sqlite3.connect(self.database)
        conn.executescript(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT);"
            "INSERT INTO users VALUES (1, 'ann', 'ann@example.org', '123-45-6789');"
            "INSERT INTO users VALUES (2, 'bob', 'bob@example.org', '987-65-4321');"
        )
        conn.commit()
        conn.close()

    def reached(self) -> list[dict[str, Any]]:
        """Every call that reached the server, in order."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def guard_args(self, *extra: str, subject: str = "claude", groups: tuple[str, ...] = ("agents",)) -> list[str]:
        args = ["mcp", "--rules", str(RULES), "--data", str(self.data), "--store", self.store, "--config", str(self.config), "--subject", subject]
        for g in groups:
            args += ["--group", g]
        return [*args, *extra]

    def params(self, *extra: str, **kw: Any) -> StdioServerParameters:
        """`subguard mcp … -- python toolserver.py shop.db`, as an agent host starts it."""
        command = subguard_command()
        args = [*command[1:], *self.guard_args(*extra, **kw), "--", sys.executable, str(TOOLSERVER), str(self.database)]
        env = {**os.environ, "TOOLSERVER_RECORD": str(self.record)}
        return StdioServerParameters(command=command[0], args=args, env=env)


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


Check = Callable[[Any], None]
