"""The `subguard` command: check, format and evaluate policies; respond through the log.

Bad input is reported as one clear line per problem, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import gc
import json
import re
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import orjson

from subguard.cli._lazy import FAST_EXIT, LazyGroup
from subguard.cli._options import data_option, rules_option
from subguard.engine import (
    INPUT_SCHEMA,
    BatchItem,
    CommandRequest,
    Decision,
    Effect,
    Engine,
    FieldError,
    HttpRequest,
    Policy,
    Resource,
    SqlRequest,
    Subject,
    find_policy_files,
    load_policy,
)
from subguard.engine.decode import JsonDecoder, Slow
from subguard.engine.inputs import DEFAULT_MAX_REQUEST_BYTES
from subguard.engine.sources import load_data, read_policy_source
from subguard.errors import ConfigError, PolicyError, PolicyErrors, SubguardError
from subguard.lang import format_text
from subguard.sql import DIALECT_ALIASES

__all__ = ["main"]

_EFFECT_COLOURS = {
    Effect.ALLOW: "green",
    Effect.MASK: "cyan",
    Effect.APPROVE: "yellow",
    Effect.DENY: "red",
    Effect.TERMINATE: "red",
}

#: Fields a batch line may carry.
_REQUEST_FIELDS = frozenset(
    {"sql", "command", "http", "subject", "resource", "session", "dialect", "input"}
)

#: The SQL dialects `--dialect` takes (the names `subguard.sql` knows).
_DIALECTS = sorted(name for name in DIALECT_ALIASES if name)


class _LineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _print_policy_errors(exc: PolicyError, *, err: bool = True) -> None:
    errors = exc.errors if isinstance(exc, PolicyErrors) else [exc]
    for error in errors:
        location = click.style(f"{error.path}:{error.line}:{error.col}:", bold=True)
        code = click.style(error.code, fg="red")
        hint = f" ({error.hint})" if error.hint else ""
        click.echo(f"{location} {code}: {error.message}{hint}", err=err)


@click.group(
    cls=LazyGroup,
    context_settings={
        "help_option_names": ["-h", "--help"],
        # every option also reads SUBGUARD_<COMMAND>_<OPTION> (SUBGUARD_EVAL_RULES, …):
        # named after the option's flag by `_name_environment` below, this prefix for any
        # option it does not reach
        "auto_envvar_prefix": "SUBGUARD",
    },
)
@click.version_option(package_name="subguard")
def main() -> None:
    """Decide, record and contain what automated agents send to production.

    Every option can also be set in the environment: SUBGUARD_<COMMAND>_<OPTION>, for
    example SUBGUARD_EVAL_RULES=rules/ or SUBGUARD_TEST_FAIL_UNDER=100 (repeatable
    options take space-separated values).
    """
    if hasattr(signal, "SIGPIPE"):
        # `subguard log | head` ends quietly, as a Unix filter does, not with an error
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


# ── check ────────────────────────────────────────────────────────────────────────────


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def check(paths: tuple[str, ...]) -> None:
    """Parse, type-check and compile the policies in PATHS; print every error."""
    try:
        policy = load_policy(list(paths))
    except PolicyError as exc:
        _print_policy_errors(exc, err=False)
        count = len(exc.errors) if isinstance(exc, PolicyErrors) else 1
        click.echo(click.style(f"{count} error{'s' * (count != 1)}", fg="red"), err=True)
        sys.exit(1)
    n = len(policy.files)
    click.echo(
        click.style(
            f"ok: {n} file{'s' * (n != 1)}, {len(policy.packages)} package{'s' * (len(policy.packages) != 1)}",
            fg="green",
        ),
        err=True,
    )


# ── fmt ──────────────────────────────────────────────────────────────────────────────


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--check", "check_only", is_flag=True, help="Exit 1 if a file is not formatted; change nothing."
)
@click.option("--diff", is_flag=True, help="Print a unified diff instead of rewriting.")
def fmt(paths: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite policies in canonical form (idempotent)."""
    try:
        files = find_policy_files(list(paths))
    except PolicyError as exc:
        _print_policy_errors(exc)
        sys.exit(2)
    unformatted = 0
    failed = 0
    for file in files:
        try:
            text = read_policy_source(file)
            formatted = format_text(text, str(file))
        except PolicyError as exc:
            _print_policy_errors(exc)
            failed += 1
            continue
        if formatted == text:
            continue
        unformatted += 1
        if diff:
            click.echo(
                "".join(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        formatted.splitlines(keepends=True),
                        fromfile=str(file),
                        tofile=str(file),
                    )
                ),
                nl=False,
            )
        elif check_only:
            click.echo(f"{file}: not formatted", err=True)
        else:
            file.write_text(formatted, encoding="utf-8")
            click.echo(f"formatted {file}", err=True)
    if failed:
        sys.exit(2)
    if unformatted and (check_only or diff):
        sys.exit(1)


# ── eval ─────────────────────────────────────────────────────────────────────────────


def _check_fields(value: Any, allowed: frozenset[str], what: str) -> None:
    if not isinstance(value, dict):
        raise _LineError("type_error", f"`{what}` must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        extra = f" (did you mean `{hint[0]}`?)" if hint else ""
        raise _LineError("unknown_field", f"`{unknown[0]}` is not a field of {what}{extra}")


def _request_from_line(line: Mapping[str, Any]) -> BatchItem:
    """A batch line's request, subject, resource and session; a `_LineError` naming the
    field when one is missing, unknown or of the wrong type (never coerced)."""
    _check_fields(line, _REQUEST_FIELDS, "a request")
    kinds = [k for k in ("sql", "command", "http") if k in line]
    if len(kinds) != 1:
        raise _LineError(
            "bad_request", "a request has exactly one of `sql`, `command`, `http` or `input`"
        )
    subject_doc = line.get("subject", {})
    try:
        subject = (
            Subject(subject_doc) if isinstance(subject_doc, str) else Subject.from_dict(subject_doc)
        )
        resource = Resource.from_dict(line.get("resource", {}))
        session = line.get("session")
        if session is not None and not isinstance(session, str):
            raise FieldError("type_error", "session", "must be a string")
        request: Any
        if "sql" in line:
            request = SqlRequest(line["sql"], line.get("dialect"))
        elif "command" in line:
            request = CommandRequest(line["command"])
        else:
            request = HttpRequest.from_dict(line["http"])
    except FieldError as exc:
        raise _LineError(exc.code, exc.message) from None
    return BatchItem(request, subject, resource, session)


def _batch_lines(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or a _LineError) for each non-blank line."""
    handle = _open_batch(path)
    with handle:
        lines = enumerate(handle, start=1)
        while True:
            try:
                number, raw_bytes = next(lines)
            except StopIteration:
                return
            except (OSError, ValueError) as exc:  # a read error part-way: stop, clearly
                raise click.UsageError(
                    f"cannot read batch `{path}`: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            try:
                yield number, _Ready(_json_documents().line(raw_bytes))
                continue
            except Slow:
                pass  # not a well-formed `{"input": …}` line: read it as before
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                yield number, _LineError("encoding_error", "line is not valid UTF-8")
                continue
            if number == 1 and raw.startswith("\ufeff"):
                raw = raw[1:]  # a byte order mark some editors write
            if not raw.strip():
                continue
            try:
                yield number, _loads(raw)
            except json.JSONDecodeError as exc:
                yield (
                    number,
                    _LineError("parse_error", f"not valid JSON: {exc.msg} at column {exc.colno}"),
                )
            except (ValueError, RecursionError):  # too deep, or an integer too long
                yield (
                    number,
                    _LineError(
                        "parse_error", "not valid JSON: too deeply nested or a number too long"
                    ),
                )


class _Ready:
    """A batch line's input document, already checked and converted (`JsonDecoder`)."""

    __slots__ = ("document",)

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document


@functools.cache
def _json_documents() -> JsonDecoder:
    return JsonDecoder(INPUT_SCHEMA)


#: 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float
_LONG_NUMBER = re.compile(r"\d{19}")


def _loads(text: str) -> Any:
    """`json.loads`, through orjson when it reads the text the same way: orjson refuses
    `NaN`, `1e400` and lone surrogates, and reads integers beyond 64 bits as floats, so
    those texts (and any with 19 digits in a row) are read by `json`."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _open_batch(path: str) -> Any:
    """The batch's byte stream: the file, or standard input for `-` (a clear error when
    it is closed, as with `<&-`)."""
    if path != "-":
        try:
            return open(path, "rb")
        except OSError as exc:
            raise click.UsageError(
                f"cannot read batch file `{path}`: {exc.strerror or exc}"
            ) from None
    stdin = sys.stdin
    try:
        if stdin is None or stdin.closed:
            raise ValueError
        return stdin.buffer
    except (AttributeError, ValueError, OSError):
        raise click.UsageError("`--batch -`: standard input is closed") from None


def _emit(decision: Decision, fmt: str, first: bool, out: list[bytes] | None = None) -> None:
    record = decision.as_dict()
    if fmt == "jsonl" and out is not None:
        out.append(orjson.dumps(record))
    elif fmt == "jsonl":
        click.echo(json.dumps(record, separators=(",", ":"), sort_keys=False))
    elif fmt == "json":
        click.echo(json.dumps(record, indent=2))
    else:
        effect = click.style(
            decision.effect.value.upper(), fg=_EFFECT_COLOURS[decision.effect], bold=True
        )
        if not first:
            click.echo()
        click.echo(f"{effect}  {record['id']}")
        for reason in decision.reasons:
            where = f"  ({reason.location})" if reason.location else ""
            click.echo(f"  {reason.package}.{reason.rule}: {reason.message}{where}")
        if decision.masks:
            masks = (
                decision.masks
                if not isinstance(decision.masks, Mapping)
                else [f"{k}={v}" for k, v in decision.masks.items()]
            )
            click.echo(f"  masks: {', '.join(masks)}")
        for error in decision.errors:
            click.echo(click.style(f"  error: {error.code}: {error.message}", fg="red"))
        if decision.approval_id is not None:
            click.echo(f"  approval: {decision.approval_id}")


def _emit_line_error(
    number: int, error: _LineError, fmt: str, out: list[bytes] | None = None
) -> None:
    click.echo(f"batch line {number}: {error.code}: {error.message}", err=True)
    if fmt in ("json", "jsonl"):
        record = {"line": number, "error": {"code": error.code, "message": error.message}}
        if out is not None:
            out.append(orjson.dumps(record))
        else:
            click.echo(json.dumps(record, separators=(",", ":")))


def _open_store(url: str | None) -> Any:
    if not url:
        return None
    from subguard.log import open_log

    try:
        return open_log(url)
    except SubguardError as exc:
        raise click.UsageError(str(exc)) from None


@main.command("eval")
@rules_option()
@data_option()
@click.option("--sql", help="One SQL request.")
@click.option("--command", "command_text", help="One shell command request.")
@click.option("--subject", "subject_id", default="", help="The subject's id.")
@click.option("--group", "groups", multiple=True, help="A group of the subject (repeatable).")
@click.option("--resource", "resource_name", default="", help="The resource's name.")
@click.option(
    "--kind",
    "resource_kind",
    default="",
    help="The resource's kind: postgres, mysql, sqlite, shell, http, …",
)
@click.option(
    "--dialect",
    default=None,
    type=click.Choice(_DIALECTS, case_sensitive=False),
    help="SQL dialect (default: from the kind, else generic).",
)
@click.option("--session", default=None, help="The session id.")
@click.option(
    "--input", "input_file", type=click.Path(), help="A raw input document (JSON), used as is."
)
@click.option(
    "--batch",
    "batch_file",
    type=click.Path(allow_dash=True),
    help='JSON lines of requests or {"input": …}.',
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    show_default=True,
)
@click.option(
    "--store", "store_url", default=None, help="Record each decision in this decision log (URL)."
)
@click.option(
    "--query",
    default=None,
    help="Print the value of a rule or document (`data.pkg.rule`) instead of a decision.",
)
@click.option(
    "--untyped",
    is_flag=True,
    help="With --query: compile without the input schema (inputs outside it).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="After the decision, show which decision rules fired and why the others did not.",
)
@click.option(
    "--max-request-bytes",
    envvar="SUBGUARD_MAX_REQUEST_BYTES",
    show_envvar=True,
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_REQUEST_BYTES,
    show_default=True,
    help="Larger SQL or command text is denied `too_large`.",
)
def eval_command(
    rules: tuple[str, ...],
    data_files: tuple[str, ...],
    sql: str | None,
    command_text: str | None,
    subject_id: str,
    groups: tuple[str, ...],
    resource_name: str,
    resource_kind: str,
    dialect: str | None,
    session: str | None,
    input_file: str | None,
    batch_file: str | None,
    fmt: str,
    store_url: str | None,
    query: str | None,
    untyped: bool,
    explain: bool,
    max_request_bytes: int,
) -> None:
    """Decide requests under a policy and print each decision (or, with --query, the
    value of a rule)."""
    from subguard.cli.query import print_explanations, run_query

    sources = [x for x in (sql, command_text, input_file, batch_file) if x is not None]
    query_alone = query is not None and not sources  # a query may need no input
    if len(sources) != 1 and not query_alone:
        raise click.UsageError("give exactly one of --sql, --command, --input or --batch")
    if (query is not None or explain) and batch_file is not None:
        raise click.UsageError("--query and --explain take one request, not --batch")
    try:
        data = load_data(data_files)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if query is not None and (untyped or input_file is not None or query_alone):
        query_input = _read_input_document(input_file) if input_file is not None else {}
        sys.exit(
            run_query(
                query,
                rules,
                None if untyped else _load_or_exit(rules, data),
                query_input,
                data,
                untyped=untyped,
            )
        )
    try:
        policy: Policy = load_policy(list(rules), data=data, parse_cache=True)
    except PolicyError as exc:
        _print_policy_errors(exc)
        sys.exit(2)
    request: Any = None
    if sql is not None or command_text is not None:
        request = (
            SqlRequest(sql, dialect) if sql is not None else CommandRequest(command_text or "")
        )
    document = _read_input_document(input_file) if input_file is not None else None
    log = _open_store(store_url)
    # a query or an explanation reads the input document itself: every fact in it
    column_facts = True if query is not None or explain else None
    engine = Engine(policy, log=log, max_request_bytes=max_request_bytes, column_facts=column_facts)
    bad_lines = 0
    gc.freeze()  # the policy, the engine and the modules live to the end: no collection walks them
    try:
        if document is not None or request is not None:
            if document is not None:
                decision = engine.evaluate(document)
            else:
                subject = Subject(subject_id, groups)
                resource = Resource(name=resource_name, kind=resource_kind, dialect=dialect)
                decision = engine.check(
                    request, subject=subject, resource=resource, session=session
                )
            if query is not None:  # the value of a rule for the input this request makes
                sys.exit(run_query(query, rules, policy, decision.input, data, untyped=False))
            _emit(decision, fmt, True)
            if explain:
                print_explanations(policy, decision, fmt)
        else:
            assert batch_file is not None
            bad_lines = _run_batch(engine, batch_file, fmt)
    finally:
        gc.unfreeze()  # an in-process caller (a test, a benchmark) gets its collector back
        close = getattr(log, "close", None)
        if close is not None:
            close()
    if log is None:
        FAST_EXIT.append(True)
    if bad_lines:
        sys.exit(2)


def _load_or_exit(rules: tuple[str, ...], data: Mapping[str, Any]) -> Policy:
    try:
        return load_policy(list(rules), data=data)
    except PolicyError as exc:
        _print_policy_errors(exc)
        sys.exit(2)


def _read_input_document(path: str) -> dict[str, Any]:
    try:
        return _json_documents().document(Path(path).read_bytes())
    except (Slow, OSError):
        pass  # read as before, which names the problem
    try:
        document = _loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read input document `{path}`: {exc}") from None
    except RecursionError:
        raise click.UsageError(f"cannot read input document `{path}`: nested too deeply") from None
    if not isinstance(document, dict):
        raise click.UsageError("the input document must be a JSON object")
    return document


class _Progress:
    """A live count of decided lines on stderr, when a person watches stderr while the
    decisions themselves go to a file or a pipe; silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        if sys.stderr.isatty() and not sys.stdout.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("deciding: {task.completed:,} lines"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("batch", total=None)
            self.bar.start()

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _run_batch(engine: Engine, batch_file: str, fmt: str) -> int:
    """Decide every line of a JSON-lines batch in order; returns how many were malformed."""
    progress = _Progress()
    try:
        return _decide_batch(engine, batch_file, fmt, progress)
    finally:
        progress.stop()


def _decide_batch(engine: Engine, batch_file: str, fmt: str, progress: _Progress) -> int:
    bad = 0
    first = True
    chunk: list[tuple[int, Any]] = []

    # JSON lines are written once per chunk (one write, not one per decision)
    out: list[bytes] | None = [] if fmt == "jsonl" else None

    def flush() -> None:
        nonlocal first
        progress.advance(len(chunk))
        requests = [item for _, item in chunk if not isinstance(item, _LineError | dict)]
        decided = iter(engine.check_many(requests)) if requests else iter(())
        for number, item in chunk:
            if isinstance(item, _LineError):
                _emit_line_error(number, item, fmt, out)
            elif isinstance(item, dict):
                _emit(engine.evaluate(item), fmt, first, out)
                first = False
            else:
                _emit(next(decided), fmt, first, out)
                first = False
        chunk.clear()
        if out:
            out.append(b"")
            _write_stdout(b"\n".join(out))
            out.clear()

    for number, parsed in _batch_lines(batch_file):
        if isinstance(parsed, _Ready):
            chunk.append((number, parsed.document))
            if len(chunk) >= 512:
                flush()
            continue
        if isinstance(parsed, _LineError):
            bad += 1
            chunk.append((number, parsed))
            continue
        try:
            if not isinstance(parsed, dict):
                raise _LineError("type_error", "each line must be a JSON object")
            if "input" in parsed:
                if set(parsed) != {"input"} or not isinstance(parsed["input"], dict):
                    raise _LineError(
                        "bad_request", "an `input` line holds only an input document object"
                    )
                chunk.append((number, parsed["input"]))
            else:
                chunk.append((number, _request_from_line(parsed)))
        except _LineError as exc:
            bad += 1
            chunk.append((number, exc))
        if len(chunk) >= 512:
            flush()
    flush()
    return bad


def _write_stdout(data: bytes) -> None:
    stdout = sys.stdout
    stdout.flush()  # text written before stays before
    stream = getattr(stdout, "buffer", None)
    if stream is None:
        stdout.write(data.decode())
    else:
        stream.write(data)
        stream.flush()


def _register_extensions() -> None:
    """Commands that live beside the packages they drive: registered on first use
    (`cli._lazy.LAZY_COMMANDS`, named by `_name_environment` then); the commands defined
    here, now."""
    LazyGroup.namer = _name_environment
    _name_environment(main, "SUBGUARD")


def _name_environment(command: click.Command, prefix: str) -> None:
    """Give every option of `command` and its subcommands the environment variable
    `PREFIX_COMMAND_OPTION`, named after the option's long flag (click's automatic names
    follow the Python parameter: `--format` would read `…_FMT`). An option that names its
    variable itself (`--store`: SUBGUARD_STORE) keeps it."""
    for param in command.params:
        if not isinstance(param, click.Option) or param.envvar is not None or param.is_eager:
            continue
        flag = max((o for o in param.opts if o.startswith("--")), key=len, default=None)
        if flag is None:
            continue
        param.envvar = f"{prefix}_{flag[2:].replace('-', '_').upper()}"
        param.show_envvar = True
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _name_environment(sub, f"{prefix}_{name.replace('-', '_').upper()}")


_register_extensions()
