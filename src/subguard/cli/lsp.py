"""`subguard lsp`: the policy language's server for editors (the Language Server
Protocol over standard input and output).

    subguard lsp [--root DIR]...

Diagnostics are the compiler's errors with their codes, hover shows an input field's
type and doc line, completion offers the fields after `input.` and its records. The
server needs the `lsp` extra (`pip install 'subguard[lsp]'`); docs/editors.md says how to
configure an editor.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

__all__ = ["register"]


@click.command()
@click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A policy directory: a file below it compiles with every policy file under it "
    "(repeatable). Without one, a file compiles with its directory and each parent "
    "holding policy files, up to the workspace folder.",
)
def lsp(roots: tuple[Path, ...]) -> None:
    """Serve the language server protocol on stdin/stdout, for editors."""
    try:
        from subguard.cli._lsp_server import build_server
    except ImportError as exc:  # the `lsp` extra is not installed
        click.echo(
            click.style("error: ", fg="red")
            + f"`subguard lsp` needs pygls ({exc.name or exc}): pip install 'subguard[lsp]'",
            err=True,
        )
        sys.exit(2)
    try:
        server_version = version("subguard")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        server_version = "0"
    # parsed sources are kept between compiles, in a directory of this session only (every
    # version of an edited buffer is a new entry: the user's cache is no place for them);
    # an empty SUBGUARD_CACHE_DIR still turns the cache off
    with tempfile.TemporaryDirectory(prefix="subguard-lsp-") as cache:
        if os.environ.get("SUBGUARD_CACHE_DIR") != "":
            os.environ["SUBGUARD_CACHE_DIR"] = cache
        build_server(roots, server_version).start_io()


def register(group: click.Group) -> None:
    group.add_command(lsp)
