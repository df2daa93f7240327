"""The `subguard` group's machinery: commands imported on first use, and the one-shot
exit without the interpreter's teardown."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import click

__all__ = ["FAST_EXIT", "LAZY_COMMANDS", "LazyGroup"]


#: Commands whose module is imported only when the command runs (or help lists them), so
#: a one-shot `eval` never loads the decision log, asyncio or ssl: name → the module whose
#: `register(group)` adds it.
LAZY_COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ("init", "verify", "anchor", "approve", "reject", "revoke", "restore", "kill", "log",
         "sessions", "replay", "export", "backtest"),
        "subguard.cli.log_commands",
    ),
    "demo": "subguard.cli.demo",
    "test": "subguard.cli.test_command",
    "mcp": "subguard.cli.mcp_command",
    "proxy": "subguard.cli.proxy_command",
    "exec": "subguard.cli.exec_command",
    "lsp": "subguard.cli.lsp",
}  # fmt: skip


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is asked for."""

    #: names the environment variables of a command registered late (set by the CLI)
    namer: ClassVar[Callable[[click.Command, str], None] | None] = None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            register_module(self, module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(LAZY_COMMANDS.values()):
            register_module(self, module)
        return super().list_commands(ctx)

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        """As click's, then, when this process runs the command line itself (`args` None)
        and the command marked its work done, exit without the interpreter's teardown
        once the output is flushed: freeing every module costs a one-shot command a
        large part of its run."""
        try:
            return super().main(args, *rest, **kwargs)
        except SystemExit as exc:
            if args is None and FAST_EXIT and exc.code in (0, 1, 2, None):
                exit_flushed(int(exc.code or 0))
            raise


#: Set by a command whose work is complete and that holds nothing (no store, no thread)
#: that teardown would still have to close.
FAST_EXIT: list[bool] = []


def exit_flushed(code: int) -> None:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # a broken pipe or a closed stream: leave it to the ordinary exit
    os._exit(code)


def register_module(group: click.Group, module: str) -> None:
    before = set(group.commands)
    __import__(module, fromlist=["register"]).register(group)
    namer = LazyGroup.namer
    for name in set(group.commands) - before:
        if namer is not None:
            namer(group.commands[name], f"SUBGUARD_{name.replace('-', '_').upper()}")
