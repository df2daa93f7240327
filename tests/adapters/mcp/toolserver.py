"""A small MCP server, written with the MCP SDK, that the MCP guard's tests put behind
`subguard mcp`: a SQLite `query` tool (rows as structured content), a shell `run` tool
that only records the command, a `list_files` tool and an `admin_reset` tool.

Every call that reaches it is appended, as one JSON line, to the file named by
`TOOLSERVER_RECORD`: the tests read it to show that nothing refused reached the server.

Run: `python toolserver.py DATABASE [--http PORT]`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

DATABASE = sys.argv[1] if len(sys.argv) > 1 else ":memory:"
server = MCPServer("toolserver")


def _record(tool: str, arguments: dict[str, Any]) -> None:
    path = os.environ.get("TOOLSERVER_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@server.tool()
def query(sql: str) -> dict[str, Any]:
    """Run one SQL statement on the shop database; rows come back as objects."""
    _record("query", {"sql": sql})
    conn = sqlite3.connect(DATABASE)
    try:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        conn.commit()
    finally:
        conn.close()
    return {"columns": names, "rows": rows}


@server.tool()
def run(command: str) -> str:
    """Record a shell command (it is never executed)."""
    _record("run", {"command": command})
    return f"recorded: {len(command)} characters"


@server.tool()
def list_files(path: str) -> list[str]:
    """List the names in a directory."""
    _record("list_files", {"path": path})
    return sorted(os.listdir(path))


@server.tool()
def admin_reset(confirm: bool) -> str:
    """Drop every table (the tests hide it from agents)."""
    _record("admin_reset", {"confirm": confirm})
    return "reset"


if __name__ == "__main__":
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()
