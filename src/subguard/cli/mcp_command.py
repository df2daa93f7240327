"""`subguard mcp`: put the MCP guard between an agent and an MCP server.

    subguard mcp [--rules PATH]... [--data FILE] [--store URL] [--subject ID] [--group G]...
                 [--sql-tool TOOL:ARG]... [--command-tool TOOL:ARG]... [--dialect D]
                 [--config FILE] -- SERVER [ARGS...]

serves the agent on stdin/stdout and starts SERVER as a child; `--upstream-url URL`
guards a streamable-HTTP server instead, and `--listen HOST:PORT` serves agents over
streamable HTTP, each identified by its bearer token. Options override the `[mcp]` table
of the configuration file (`[identity]` holds the token settings, `[mcp.resource]` the
resource: name, kind, env, schema with column tags).
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from subguard.cli._options import data_option, rules_option
from subguard.engine import Engine, Resource, Subject, load_policy
from subguard.engine.sources import load_data
from subguard.errors import ConfigError, PolicyError, PolicyErrors, SubguardError
from subguard.sql import DIALECT_ALIASES

__all__ = ["register"]

T = TypeVar("T")

_DIALECTS = sorted(name for name in DIALECT_ALIASES if name)

#: Keys of the `[mcp]` table.
_CONFIG_KEYS = frozenset(
    {
        "rules",
        "data",
        "store",
        "subject",
        "groups",
        "sql_tools",
        "command_tools",
        "dialect",
        "approval_timeout",
        "upstream_url",
        "listen",
        "server",
        "resource",
        "session",
    }
)
_RESOURCE_KEYS = frozenset({"name", "kind", "dialect", "env", "tags", "schema"})

#: How long a held call waits for a responder unless configured.
DEFAULT_APPROVAL_TIMEOUT = 60.0


def _fail(message: str) -> None:
    click.echo(click.style("error: ", fg="red") + message, err=True)
    sys.exit(2)


def _read_config(path: str | None) -> tuple[dict[str, Any], dict[str, Any], Path | None]:
    """The `[mcp]` and `[identity]` tables of a configuration file (empty without one)."""
    if path is None:
        return {}, {}, None
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration `{path}`: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    mcp = doc.get("mcp", {})
    identity = doc.get("identity", {})
    if not isinstance(mcp, Mapping) or not isinstance(identity, Mapping):
        raise ConfigError(f"{path}: `mcp` and `identity` must be tables")
    unknown = sorted(set(mcp) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: `mcp.{unknown[0]}` is not an MCP setting (known: {', '.join(sorted(_CONFIG_KEYS))})"
        )
    return dict(mcp), dict(identity), Path(path).parent


def _strings(config: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = config.get(key, ())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `mcp.{key}` must be a list of strings")
    return tuple(value)


def _string(config: Mapping[str, Any], key: str, where: str) -> str | None:
    value = config.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: `mcp.{key}` must be a string")
    return value


def _relative(paths: tuple[str, ...], base: Path | None) -> tuple[str, ...]:
    if base is None:
        return paths
    return tuple(str(base / p) if not Path(p).is_absolute() else p for p in paths)


def _tool_map(values: tuple[str, ...], option: str) -> dict[str, str]:
    from subguard.adapters.mcp import parse_tool_spec

    out: dict[str, str] = {}
    for value in values:
        try:
            tool, arg = parse_tool_spec(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
        out[tool] = arg
    return out


def _resource(
    config: Mapping[str, Any], where: str, default_name: str, dialect: str | None
) -> Resource:
    doc = config.get("resource", {})
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: `mcp.resource` must be a table")
    unknown = sorted(set(doc) - _RESOURCE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: `mcp.resource.{unknown[0]}` is not a resource setting")
    fields = dict(doc)
    fields.setdefault("name", default_name)
    fields.setdefault("kind", "mcp")
    if dialect is not None:
        fields["dialect"] = dialect
    return Resource.from_dict(fields, field="mcp.resource")


@click.command("mcp", context_settings={"show_default": True})
@rules_option(required=False)
@data_option()
@click.option(
    "--store",
    "store_url",
    default=None,
    envvar="SUBGUARD_STORE",
    help="The decision log (URL); without one, holds cannot be granted.",
)
@click.option("--subject", "subject_id", default=None, help="The agent's subject id (stdio).")
@click.option(
    "--group", "groups", multiple=True, help="A group of the subject (repeatable; stdio)."
)
@click.option(
    "--sql-tool",
    "sql_tools",
    multiple=True,
    metavar="TOOL:ARG",
    help="Analyse this tool's argument as SQL (repeatable).",
)
@click.option(
    "--command-tool",
    "command_tools",
    multiple=True,
    metavar="TOOL:ARG",
    help="Analyse this tool's argument as a shell command (repeatable).",
)
@click.option(
    "--dialect",
    default=None,
    type=click.Choice(_DIALECTS, case_sensitive=False),
    help="SQL dialect of the SQL tools.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(),
    help="Configuration file (TOML: [mcp], [mcp.resource], [identity]).",
)
@click.option(
    "--approval-timeout",
    default=None,
    type=click.FloatRange(min=0),
    help=f"Seconds a held call waits for a responder (0: refuse at once with the approval id) [default: {DEFAULT_APPROVAL_TIMEOUT:g}]",
)
@click.option(
    "--upstream-url", default=None, help="Guard this streamable-HTTP MCP server instead of a child."
)
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve agents over streamable HTTP; each is identified by its bearer token.",
)
@click.option(
    "--session",
    "session_id",
    default=None,
    help="The subguard session id (stdio; default: a new one).",
)
@click.argument("server", nargs=-1, type=click.UNPROCESSED)
def mcp_command(
    rules: tuple[str, ...],
    data_files: tuple[str, ...],
    store_url: str | None,
    subject_id: str | None,
    groups: tuple[str, ...],
    sql_tools: tuple[str, ...],
    command_tools: tuple[str, ...],
    dialect: str | None,
    config_file: str | None,
    approval_timeout: float | None,
    upstream_url: str | None,
    listen: str | None,
    session_id: str | None,
    server: tuple[str, ...],
) -> None:
    """Guard an MCP server's tool calls: each is decided and recorded before it runs.

    SERVER [ARGS...] (after `--`) is started as a child and spoken to over stdio.
    """
    try:
        _run(
            rules,
            data_files,
            store_url,
            subject_id,
            groups,
            sql_tools,
            command_tools,
            dialect,
            config_file,
            approval_timeout,
            upstream_url,
            listen,
            session_id,
            server,
        )
    except PolicyError as exc:
        errors = exc.errors if isinstance(exc, PolicyErrors) else [exc]
        for error in errors:
            hint = f" ({error.hint})" if error.hint else ""
            click.echo(
                f"{error.path}:{error.line}:{error.col}: {error.code}: {error.message}{hint}",
                err=True,
            )
        sys.exit(2)
    except SubguardError as exc:
        _fail(str(exc))


def _run(
    rules: tuple[str, ...],
    data_files: tuple[str, ...],
    store_url: str | None,
    subject_id: str | None,
    groups: tuple[str, ...],
    sql_tools: tuple[str, ...],
    command_tools: tuple[str, ...],
    dialect: str | None,
    config_file: str | None,
    approval_timeout: float | None,
    upstream_url: str | None,
    listen: str | None,
    session_id: str | None,
    server: tuple[str, ...],
) -> None:
    try:
        import anyio

        from subguard.adapters.mcp import ToolSpec, stdio_upstream, url_upstream
    except ImportError as exc:  # the `mcp` extra is not installed
        _fail(f"`subguard mcp` needs the MCP SDK (`pip install 'subguard[mcp]'`): {exc}")
        raise  # unreachable

    config, identity, base = _read_config(config_file)
    where = config_file or "configuration"
    # every setting of the file is checked, whether or not an option overrides it
    file_lists = {
        key: _strings(config, key, where)
        for key in ("rules", "data", "groups", "sql_tools", "command_tools", "server")
    }
    file_texts = {
        key: _string(config, key, where)
        for key in ("store", "subject", "dialect", "upstream_url", "listen", "session")
    }
    rules = rules or _relative(file_lists["rules"], base)
    data_files = data_files or _relative(file_lists["data"], base)
    groups = groups or file_lists["groups"]
    sql_tools = sql_tools or file_lists["sql_tools"]
    command_tools = command_tools or file_lists["command_tools"]
    server = server or file_lists["server"]
    store_url = store_url or file_texts["store"]
    subject_id = subject_id if subject_id is not None else file_texts["subject"]
    dialect = dialect or file_texts["dialect"]
    upstream_url = upstream_url or file_texts["upstream_url"]
    listen = listen or file_texts["listen"]
    session_id = session_id or file_texts["session"]
    if approval_timeout is None:
        configured = config.get("approval_timeout", DEFAULT_APPROVAL_TIMEOUT)
        if (
            isinstance(configured, bool)
            or not isinstance(configured, int | float)
            or configured < 0
        ):
            raise ConfigError(
                f"{where}: `mcp.approval_timeout` must be a number of seconds, not negative"
            )
        approval_timeout = float(configured)

    if not rules:
        raise click.UsageError("no rules: give --rules PATH (or `rules` in the configuration)")
    if bool(server) == bool(upstream_url):
        raise click.UsageError("give either `-- SERVER [ARGS...]` or --upstream-url URL")
    if listen is None and identity and not subject_id:
        raise click.UsageError("[identity] is for --listen; over stdio give --subject")

    listen_at: tuple[str, int] | None = None
    if listen is not None:
        from subguard.adapters.mcp._http import parse_listen

        try:
            listen_at = parse_listen(listen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--listen'") from None

    spec = ToolSpec(
        sql_tools=_tool_map(sql_tools, "--sql-tool"),
        command_tools=_tool_map(command_tools, "--command-tool"),
        dialect=dialect.lower() if dialect else None,
    )
    policy = load_policy(list(rules), data=load_data(data_files) if data_files else None)
    log = None
    if store_url:
        from subguard.log import open_log

        log = open_log(store_url)
    engine = Engine(policy, log=log)
    upstream = url_upstream(upstream_url) if upstream_url else stdio_upstream(server[0], server[1:])
    resource = _resource(config, where, upstream.name, spec.dialect)

    if listen_at is not None:
        from subguard.adapters.mcp._http import serve_http
        from subguard.identity import IdentityConfig

        host, port = listen_at
        identity_config = IdentityConfig.from_mapping(identity, base=base)
        if not identity_config.has_keys:
            raise click.UsageError("--listen needs token keys: an [identity] table in --config")
        click.echo(f"subguard mcp: serving streamable HTTP on http://{host}:{port}/mcp", err=True)
        _upstream_errors(
            lambda: anyio.run(
                lambda: serve_http(
                    engine,
                    upstream,
                    host=host,
                    port=port,
                    identity=identity_config,
                    resource=resource,
                    spec=spec,
                    approval_timeout=approval_timeout,
                )
            ),
            upstream.name,
        )
        return

    from subguard.adapters.mcp import serve_stdio

    subject = Subject(subject_id or "", frozenset(groups))
    reason = _upstream_errors(
        lambda: anyio.run(
            lambda: serve_stdio(
                engine,
                upstream,
                subject=subject,
                resource=resource,
                spec=spec,
                approval_timeout=approval_timeout,
                session_id=session_id,
            )
        ),
        upstream.name,
    )
    if reason is not None:
        click.echo(f"subguard mcp: {reason}", err=True)
        sys.exit(1)


def _first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio's task groups wrap what failed)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _upstream_errors(run: Callable[[], T], server: str) -> T:
    """`run()`, with a server that cannot be started or reached reported in one line."""
    try:
        return run()
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, BaseExceptionGroup) as exc:
        cause = _first_error(exc)
        if isinstance(cause, KeyboardInterrupt):
            sys.exit(130)
        if isinstance(cause, SubguardError):
            raise cause from None
        detail = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        _fail(f"the MCP server `{server}` cannot be started or reached: {detail}")
        raise  # unreachable
    except Exception as exc:  # the SDK's transport errors, a handshake the server refused
        _fail(f"the MCP server `{server}` failed: {type(exc).__name__}: {exc}")
        raise  # unreachable


def register(main: click.Group) -> None:
    main.add_command(mcp_command)
