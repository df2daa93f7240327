"""The responders' commands over the decision log: verify, approve, revoke, kill, read.

`register(group)` adds them to the `subguard` click group. Every command takes
`--store URL` (default: the SUBGUARD_STORE environment variable). Errors are one line
on stderr and exit status 2; `verify` exits 1 when the log was tampered with.
"""

from __future__ import annotations

import functools
import pathlib
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import orjson

from subguard.errors import SubguardError
from subguard.log import (
    Anchor,
    DecisionLog,
    LogRecord,
    RecordLinker,
    Topic,
    VerifyReport,
    fold_sessions,
    follow,
    format_time,
    ocsf_event,
    open_log,
    open_store,
    parse_duration,
    read_records,
    session_timeline,
    since_ns,
    verify_store,
)
from subguard.log import (
    backtest as run_backtest,
)

__all__ = ["register"]

F = TypeVar("F", bound=Callable[..., Any])

EFFECT_STYLE = {
    "terminate": "bold red",
    "deny": "red",
    "approve": "yellow",
    "allow": "green",
    "mask": "cyan",
}


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _guarded(fn: F) -> F:
    """One clear line and exit 2 for every expected failure, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SubguardError, ValueError, OSError) as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        except KeyboardInterrupt:
            sys.exit(130)
        except click.ClickException:
            raise
        except Exception as e:  # still one line: responders read this during an incident
            first = str(e).splitlines()[0] if str(e) else ""
            _fail(f"unexpected {type(e).__name__}: {first}")

    return wrapper  # type: ignore[return-value]


def _store_url(url: str | None) -> str:
    if not url:
        _fail("no store given: pass --store URL or set SUBGUARD_STORE")
    assert url is not None
    return url


store_option = click.option(
    "--store",
    "store_url",
    envvar="SUBGUARD_STORE",
    default=None,
    metavar="URL",
    help="decision log: sqlite:///path, postgresql://…, memory:// (default: $SUBGUARD_STORE)",
)


def _admin_log(url: str | None) -> DecisionLog:
    return open_log(_store_url(url), follow=False)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _uuid(text: str, what: str = "approval") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValueError(f"`{text}` is not an {what} id") from None


def _jsonl(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")


# ----------------------------------------------------------------------------------------
# records, filters, formatting


def _matches(
    line: dict[str, Any], session: str | None, subject: str | None, since: int, record: LogRecord
) -> bool:
    if session is not None and line.get("session") != session:
        return False
    if subject is not None and line.get("subject") != subject:
        return False
    return not (since and record.time_ns < since)


def _text_line(line: dict[str, Any]) -> str:
    from rich.markup import escape

    event = line["event"]
    at = str(line.get("at", ""))[:23]
    decision = line.get("decision_id") or "-"
    head = f"[dim]{at}[/] {decision} "
    if event == "DecisionRecorded":
        effect = str(line.get("effect", ""))
        style = EFFECT_STYLE.get(effect, "")
        reasons = "; ".join(
            r.get("message", "") for r in line.get("reasons") or [] if r.get("message")
        )
        text = (
            f"{head}[{style}]{effect:<9}[/] session={line.get('session')} subject={line.get('subject')} "
            f"{escape(str(line.get('text', '')))}"
        )
        if reasons:
            text += f" [dim]({escape(reasons)})[/]"
        if line.get("approval"):
            text += f" approval={line['approval']}"
        return text
    details = {
        k: v
        for k, v in line.items()
        if k not in ("position", "event", "aggregate", "version", "decision_id", "at", "claims")
        and v not in (None, "", [], {})
    }
    parts = " ".join(f"{k}={v}" for k, v in details.items() if not isinstance(v, (dict, list)))
    return f"{head}[bold]{event}[/] {escape(parts)}"


def _completion_text(c: dict[str, Any]) -> str:
    """`SELECT 3 rows 1.204 ms`, `error 22012 0.310 ms`: what a statement did."""
    outcome = c.get("outcome")
    if outcome == "error":
        what = f"error {c.get('sqlstate')}"
    elif outcome == "empty":
        what = "empty"
    else:
        what = str(c.get("command") or ("suspended" if outcome == "suspended" else "done"))
        if c.get("rows") is not None:
            what += f" {c['rows']} row{'' if c['rows'] == 1 else 's'}"
        if outcome == "suspended":
            what += " (suspended)"
    return f"{what} {float(c.get('ms') or 0):.3f} ms"


# ----------------------------------------------------------------------------------------
# commands


def register(group: click.Group) -> None:
    """Add the decision-log commands to `group`."""
    for command in (
        init,
        verify,
        anchor,
        approve,
        reject,
        revoke,
        restore,
        kill,
        log_command,
        sessions,
        replay,
        export,
        backtest,
    ):
        group.add_command(command)


@click.command()
@store_option
@_guarded
def init(store_url: str | None) -> None:
    """Create the decision log's tables (once per PostgreSQL database and schema)."""
    store = open_store(_store_url(store_url), create=True)
    try:
        click.echo(f"initialised {store.url}")
    finally:
        store.close()


@click.command()
@store_option
@click.option(
    "--anchor",
    "anchor_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="an anchor printed earlier by `subguard anchor`: the log must still hold it",
)
@click.option(
    "--expect-root",
    default=None,
    metavar="ROOT",
    help="a checkpoint root published elsewhere: some checkpoint must have it",
)
@_guarded
def verify(store_url: str | None, anchor_file: str | None, expect_root: str | None) -> None:
    """Recompute every hash, chain link and checkpoint; exit 1 on the first bad event.

    Read-only. An empty or wiped store, a missing StoreCreated or checkpoint, or a log
    that no longer holds a published anchor are failures too.
    """
    anchor = Anchor.from_json(pathlib.Path(anchor_file).read_bytes()) if anchor_file else None
    report = _verified(store_url, anchor=anchor, expect_root=expect_root)
    unsealed = (
        f"; {report.unsealed} aggregates have events after the last checkpoint"
        if report.unsealed
        else ""
    )
    anchored = ", the anchor is held" if anchor is not None else ""
    rooted = ", the expected root is held" if expect_root is not None else ""
    click.echo(
        f"ok: {report.events} events in {report.aggregates} aggregates, "
        f"{report.checkpoints} checkpoints, all hashes and chains intact{anchored}{rooted}{unsealed}"
    )


def _verified(url: str | None, **checks: Any) -> VerifyReport:
    """Verify (read-only) or exit 1 naming the first problem."""
    store = open_store(_store_url(url), create=False)
    try:
        report = verify_store(store, **checks)
    finally:
        store.close()
    if report.problem is not None:
        click.echo(f"tampered: {report.problem}", err=True)
        sys.exit(1)
    return report


@click.command()
@store_option
@_guarded
def anchor(store_url: str | None) -> None:
    """Verify the log, then print its newest checkpoint as one JSON line to publish
    elsewhere (a SIEM, a transparency log); `verify --anchor FILE` checks it later."""
    report = _verified(store_url)
    if report.anchor is None:
        _fail("the log has no checkpoint to anchor yet")
    assert report.anchor is not None
    click.echo(report.anchor.to_json())


@click.command()
@click.argument("approval_id")
@click.option("--by", required=True, help="who grants it (not the requesting subject)")
@click.option(
    "--window",
    default=None,
    help="grant the statement's shape for this long (e.g. 15m); default: once",
)
@store_option
@_guarded
def approve(approval_id: str, by: str, window: str | None, store_url: str | None) -> None:
    """Grant a held request, once or for a window."""
    seconds = parse_duration(window) if window else None
    with _admin_log(store_url) as log:
        outcome = log.approve(_uuid(approval_id), by=by, window=seconds)
    until = format_time(outcome.until_ns)
    click.echo(f"granted {approval_id} ({outcome.mode}, until {until}) by {by}")


@click.command()
@click.argument("approval_id")
@click.option("--by", required=True, help="who refuses it")
@click.option("--reason", default="", help="why")
@store_option
@_guarded
def reject(approval_id: str, by: str, reason: str, store_url: str | None) -> None:
    """Refuse a held request."""
    with _admin_log(store_url) as log:
        log.reject(_uuid(approval_id), by=by, reason=reason)
    click.echo(f"refused {approval_id} by {by}")


@click.command()
@click.argument("subject")
@click.option("--reason", required=True, help="why (shown in every terminate decision)")
@click.option("--by", default="", help="who revokes")
@store_option
@_guarded
def revoke(subject: str, reason: str, by: str, store_url: str | None) -> None:
    """Revoke a subject everywhere: its later checks yield terminate."""
    with _admin_log(store_url) as log:
        log.revoke(subject, reason=reason, by=by)
    click.echo(f"revoked {subject}")


@click.command()
@click.argument("subject")
@click.option("--reason", default="", help="why")
@click.option("--by", default="", help="who restores")
@store_option
@_guarded
def restore(subject: str, reason: str, by: str, store_url: str | None) -> None:
    """Lift a revocation."""
    with _admin_log(store_url) as log:
        log.restore(subject, reason=reason, by=by)
    click.echo(f"restored {subject}")


@click.command()
@click.argument("session")
@click.option("--reason", default="killed by a responder", help="why")
@click.option("--by", default="", help="who kills it")
@store_option
@_guarded
def kill(session: str, reason: str, by: str, store_url: str | None) -> None:
    """Terminate a session: its later checks yield terminate."""
    with _admin_log(store_url) as log:
        log.kill(session, reason=reason, by=by)
    click.echo(f"killed session {session}")


@click.command("log")
@store_option
@click.option("--session", default=None, help="only this session")
@click.option("--subject", default=None, help="only this subject")
@click.option("--since", default=None, help="RFC 3339 time or a duration back (15m, 2h, 1d)")
@click.option("--follow", "follow_", is_flag=True, help="keep printing new events")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text")
@_guarded
def log_command(
    store_url: str | None,
    session: str | None,
    subject: str | None,
    since: str | None,
    follow_: bool,
    fmt: str,
) -> None:
    """Print the log in notification order; every line carries its decision id."""
    store = open_store(_store_url(store_url), create=False)
    console = _console()
    linker = RecordLinker()
    threshold = since_ns(since)
    records: Iterator[LogRecord] = follow(store) if follow_ else read_records(store)
    try:
        for record in records:
            if record.topic in (Topic.CHECKPOINT, Topic.STORE_CREATED):
                continue
            line = linker.fill(record)
            if not _matches(line, session, subject, threshold, record):
                continue
            if fmt == "jsonl":
                _jsonl(line)
                if follow_:
                    sys.stdout.flush()
            else:
                console.print(_text_line(line))
    finally:
        store.close()


@click.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text")
@_guarded
def sessions(store_url: str | None, fmt: str) -> None:
    """List sessions: subject, start, requests, denials, and whether they ended."""
    store = open_store(_store_url(store_url), create=False)
    try:
        folded = fold_sessions(read_records(store, topics=Topic.SESSION))
    finally:
        store.close()
    if fmt == "jsonl":
        for summary in folded.values():
            _jsonl(summary.as_dict())
        return
    from rich.table import Table

    table = Table(
        "session", "subject", "resource", "started", "last", "requests", "denied", "state"
    )
    for s in folded.values():
        state = (
            f"[red]terminated: {s.terminated}[/]" if s.terminated is not None else "[green]open[/]"
        )
        table.add_row(
            s.session,
            str(s.subject),
            str(s.resource or ""),
            str(s.started or "")[:19],
            str(s.last or "")[:19],
            str(s.requests),
            str(s.denied),
            state,
        )
    _console().print(table)


@click.command()
@click.argument("session")
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text")
@_guarded
def replay(session: str, store_url: str | None, fmt: str) -> None:
    """A session's timeline: its connection, start, every decision with its reasons and
    what its statements did, approvals, the end."""
    store = open_store(_store_url(store_url), create=False)
    try:
        lines = session_timeline(store, session)
    finally:
        store.close()
    if fmt == "jsonl":
        for line in lines:
            line.pop("position", None)
            _jsonl(line)
        return
    console = _console()
    from rich.markup import escape

    for line in lines:
        at = str(line.get("at", ""))[:23]
        event = line["event"]
        if event == "SessionStarted":
            console.print(
                f"[dim]{at}[/] [bold]session {session} started[/] subject={line.get('subject')} groups={line.get('groups')}"
            )
        elif event == "SessionOpened":
            console.print(
                f"[dim]{at}[/] [bold]session {session} opened[/] subject={line.get('subject')} "
                f"peer={escape(str(line.get('peer')))} application_name={escape(repr(line.get('application_name')))} "
                f"tls={line.get('tls')} adapter={line.get('adapter')}"
            )
        elif event == "SessionClosed":
            seconds = float(line.get("duration_ms") or 0) / 1000
            console.print(
                f"[dim]{at}[/] [bold]session closed[/] after {seconds:.3f} s: {escape(str(line.get('reason')))}"
            )
        elif event == "StatementCompleted":
            console.print(f"[dim]{at}[/] {line.get('decision_id')} {_completion_text(line)}")
        elif event == "DecisionRecorded":
            effect = str(line.get("effect"))
            done = "; ".join(_completion_text(c) for c in line.get("completions") or [])
            console.print(
                f"[dim]{at}[/] {line.get('decision_id')} [{EFFECT_STYLE.get(effect, '')}]{effect:<9}[/] {escape(str(line.get('text')))}"
                + (f" [cyan]→ {done}[/]" if done else "")
            )
            for reason in line.get("reasons") or []:
                console.print(
                    f"    [dim]{reason.get('effect')} {reason.get('package')}.{reason.get('rule')} {reason.get('location')}:[/] {escape(str(reason.get('message')))}"
                )
            facts = line.get("facts") or {}
            if facts.get("tables_read") or facts.get("tables_written"):
                console.print(
                    f"    [dim]read {facts.get('tables_read')} wrote {facts.get('tables_written')}[/]"
                )
        elif event == "SessionTerminated":
            console.print(
                f"[dim]{at}[/] [bold red]session terminated[/] by {line.get('by') or '-'}: {escape(str(line.get('reason')))}"
            )
        else:
            who = line.get("by") or ""
            console.print(
                f"[dim]{at}[/] {line.get('decision_id')} [yellow]{event}[/] {line.get('approval')} {who} {escape(str(line.get('reason') or line.get('mode') or ''))}"
            )


@click.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "ocsf"]), default="jsonl")
@click.option("--since", default=None, help="RFC 3339 time or a duration back (15m, 2h, 1d)")
@_guarded
def export(store_url: str | None, fmt: str, since: str | None) -> None:
    """Export the log as JSON lines (every event) or OCSF API Activity (decisions)."""
    store = open_store(_store_url(store_url), create=False)
    threshold = since_ns(since)
    linker = RecordLinker()
    try:
        for record in read_records(store):
            if record.topic in (Topic.CHECKPOINT, Topic.STORE_CREATED):
                continue
            line = linker.fill(record)
            if threshold and record.time_ns < threshold:
                continue
            if fmt == "ocsf":
                if record.topic == Topic.DECISION_RECORDED:
                    _jsonl(ocsf_event(record))
            else:
                _jsonl(line)
    finally:
        store.close()


@click.command()
@click.option(
    "--rules",
    "rules",
    required=True,
    multiple=True,
    type=click.Path(exists=True),
    help="candidate policy files or directories",
)
@click.option(
    "--data", default=None, type=click.Path(exists=True), help="data document for the candidate"
)
@store_option
@click.option("--since", default=None, help="RFC 3339 time or a duration back (15m, 2h, 1d)")
@click.option("--examples", default=3, show_default=True, help="examples shown per change")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text")
@_guarded
def backtest(
    rules: tuple[str, ...],
    data: str | None,
    store_url: str | None,
    since: str | None,
    examples: int,
    fmt: str,
) -> None:
    """Re-decide every recorded request with a candidate policy; show what would change."""
    from subguard.engine import Engine, load_policy
    from subguard.engine.sources import load_data

    policy_data = load_data([data]) if data else None
    policy = load_policy(list(rules), data=policy_data)
    store = open_store(_store_url(store_url), create=False)
    try:
        report = run_backtest(store, Engine(policy), since_ns=since_ns(since), examples=examples)
    finally:
        store.close()
    if fmt == "jsonl":
        _jsonl(report.as_dict())
        return
    console = _console()
    from rich.markup import escape

    console.print(
        f"{report.decisions} recorded decisions re-decided with {', '.join(rules)}: "
        f"[bold]{report.changed} would change[/]"
    )
    if report.decided_by_log:
        console.print(
            f"  [dim]{report.decided_by_log} decided by the log (revocation, kill, approval grant) left out[/]"
        )
    for change in report.changes:
        a, b = change.before, change.after
        console.print(
            f"  [{EFFECT_STYLE.get(a, '')}]{a}[/] → [{EFFECT_STYLE.get(b, '')}]{b}[/]: {change.count}"
        )
        for example in change.examples:
            reasons = "; ".join(example["reasons"])
            console.print(
                f"      {example['decision_id']} {escape(str(example['text']))} [dim]{escape(reasons)}[/]"
            )
