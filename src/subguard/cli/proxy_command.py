"""`subguard proxy postgres`: run the PostgreSQL wire-protocol proxy."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

import click

from subguard.cli._options import data_option, rules_option
from subguard.errors import ConfigError, PolicyError, SubguardError

__all__ = ["register"]


@click.group()
def proxy() -> None:
    """Proxies that put subguard in the data path."""


@proxy.command("postgres")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="subguard.toml: every setting below, and more.",
)
@click.option("--listen", help="HOST:PORT to accept clients on (default 127.0.0.1:6432).")
@click.option(
    "--upstream",
    help="postgresql://user@host:port/db; the password comes from SUBGUARD_UPSTREAM_PASSWORD or --upstream-password-file.",
)
@click.option(
    "--upstream-password-file",
    type=click.Path(dir_okay=False),
    help="A file holding the upstream password.",
)
@rules_option(required=False)
@data_option("data")
@click.option("--store", help="The decision log's URL (sqlite:///path, postgresql://…, memory://).")
@click.option(
    "--jwt-secret-file",
    type=click.Path(dir_okay=False),
    help="HS256 secret for agents' tokens (development and tests).",
)
@click.option(
    "--jwks-file",
    type=click.Path(dir_okay=False),
    help="A JWKS file of the keys that sign agents' tokens.",
)
@click.option("--issuer", help="The `iss` every token must carry.")
@click.option("--audience", help="The `aud` every token must be for.")
@click.option(
    "--tags",
    type=click.Path(dir_okay=False),
    help='Column tags, JSON {"table.column": ["tag"]}; the schema is read from the database.',
)
@click.option(
    "--approval-timeout",
    type=float,
    help="Seconds a held statement waits for a responder (default 0: refuse at once).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="Server certificate (PEM) for clients' SSLRequest.",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False), help="The certificate's private key (PEM)."
)
@click.option("--quiet", is_flag=True, help="Do not print session starts and ends on stderr.")
def postgres(config_file: str | None, quiet: bool, **flags: Any) -> None:
    """Run the PostgreSQL proxy: agents log in with a token as their password, every
    statement is decided and logged before the database sees it."""
    import logging

    if not quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s subguard.proxy: %(message)s"))
        proxy_logger = logging.getLogger("subguard.proxy")
        proxy_logger.addHandler(handler)
        proxy_logger.setLevel(logging.INFO)
    from subguard.adapters.postgres import (
        ProxyConfig,
        ProxyServer,
        introspect_schema,
        read_config_file,
    )
    from subguard.adapters.postgres.upstream import UpstreamError
    from subguard.engine import Engine, load_policy
    from subguard.engine.sources import load_data
    from subguard.identity import TokenError, TokenVerifier
    from subguard.log import open_log

    try:
        file = read_config_file(config_file) if config_file else None
        config = ProxyConfig.build(file, flags)
        TokenVerifier(config.identity)  # key files are read now: a bad one stops the start
        data = load_data(list(config.data))
    except (ConfigError, TokenError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        policy = load_policy(list(config.rules), data=data)
    except PolicyError as exc:
        from subguard.cli import _print_policy_errors

        _print_policy_errors(exc)
        sys.exit(2)
    try:
        log = open_log(config.store)
    except SubguardError as exc:
        raise click.UsageError(str(exc)) from None
    engine = Engine(policy, log=log)

    async def run() -> None:
        try:
            schema = await introspect_schema(config)
        except (UpstreamError, OSError) as exc:
            raise click.ClickException(
                f"cannot read the schema from the database: {getattr(exc, 'message', exc)}"
            ) from None
        server = ProxyServer(config, engine, schema=schema)
        host, port = await server.start()
        click.echo(
            f"subguard: proxying PostgreSQL on {host}:{port} → {config.upstream.host}:{config.upstream.port}/{config.upstream.database}",
            err=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        serving = asyncio.create_task(server.serve_forever())
        await stop.wait()
        await server.close()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    try:
        _run(run())
    finally:
        log.close()


def _run(main: Any) -> None:
    """uvloop's event loop when it is installed (the `proxy` extra), else asyncio's."""
    import importlib

    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def register(main: click.Group) -> None:
    main.add_command(proxy)
