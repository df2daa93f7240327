"""`subguard exec`: judge a command, record the decision, then run it — or not.

`subguard exec [OPTIONS] -- PROGRAM [ARGS...]` runs the argv directly (no shell reads it
again); `subguard exec [OPTIONS] --shell 'SCRIPT'` judges the whole script, then runs it
with `/bin/sh -c`. Allowed: the command's own exit status and output. Held: the approval
id and the `subguard approve` command go to stderr, and the gate waits up to `--wait`
seconds following the log, then runs once granted. Denied, terminated, refused or timed
out: nothing starts, and the exit status is 126 with the reason on stderr.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
from typing import Any

import click

from subguard.cli._options import data_option, rules_option
from subguard.errors import ConfigError, PolicyError, SubguardError

__all__ = ["register"]

#: The exit status when the gate refuses: the shell's "found but cannot execute".
REFUSED = 126


def _refuse(message: str) -> None:
    click.echo(click.style("subguard: ", fg="red", bold=True) + message, err=True)
    sys.exit(REFUSED)


class _Spinner:
    """A spinner on stderr while a person watches (stderr is a terminal)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Spinner:
        if sys.stderr.isatty():
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
            sys.stderr.write("\r\033[K")

    def _run(self) -> None:
        frames = "|/-\\"
        i = 0
        while not self.stop.wait(0.1):
            sys.stderr.write(f"\r{frames[i % 4]} {self.text}")
            sys.stderr.flush()
            i += 1


@click.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@rules_option()
@data_option()
@click.option(
    "--store",
    "store_url",
    default=None,
    envvar="SUBGUARD_STORE",
    help="The decision log (URL); needed to hold for approval.",
)
@click.option("--subject", "subject_id", default="", help="The subject's id.")
@click.option("--group", "groups", multiple=True, help="A group of the subject (repeatable).")
@click.option("--session", default=None, help="The session id.")
@click.option(
    "--wait",
    "wait",
    default=0.0,
    type=click.FloatRange(min=0, max=86400),
    help="Seconds to wait for an approval.",
)
@click.option(
    "--shell", "script", default=None, help="A script to judge whole and run with /bin/sh -c."
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def exec_command(
    rules: tuple[str, ...],
    data_files: tuple[str, ...],
    store_url: str | None,
    subject_id: str,
    groups: tuple[str, ...],
    session: str | None,
    wait: float,
    script: str | None,
    argv: tuple[str, ...],
) -> None:
    """Judge a command under a policy, record it, and run it only when allowed."""
    from subguard.adapters import ApprovalRequired, Denied, Gate, Refused, Terminated
    from subguard.engine import CommandRequest, Engine, Resource, load_policy
    from subguard.engine.sources import load_data

    if (script is None) == (not argv):
        raise click.UsageError("give a command after `--`, or --shell 'SCRIPT' (not both)")
    try:
        policy = load_policy(list(rules), data=load_data(data_files))
    except (PolicyError, ConfigError) as exc:
        _refuse(f"the policy does not load: {exc}")
    log: Any = None
    if store_url:
        from subguard.log import open_log

        try:
            log = open_log(store_url)
        except SubguardError as exc:
            _refuse(f"the decision log cannot be opened: {exc}")
    text = script if script is not None else shlex.join(argv)
    try:
        gate = Gate(
            Engine(policy, log=log),
            subject={"id": subject_id, "groups": list(groups)},
            resource=Resource(kind="shell"),
            session=session,
            approval_timeout=0.0,
        )
        try:
            gate.decide(CommandRequest(text))
        except ApprovalRequired as held:
            click.echo(f"subguard: {held}", err=True)
            if wait <= 0 or held.approval_id is None:
                _refuse(f"held for approval {held.approval_id}; not run")
            with _Spinner(f"waiting for approval {held.approval_id} (up to {wait:g}s)"):
                _await(gate, log, held.approval_id, wait)
            # granted: the re-check finds the grant in the log (and is recorded)
            gate.decide(CommandRequest(text))
    except (Denied, Terminated, ApprovalRequired) as exc:
        _refuse(str(exc))
    except Refused as exc:
        _refuse(str(exc))
    finally:
        close = getattr(log, "close", None)
        # the command runs after the log is closed: nothing more is recorded
    if close is not None:
        close()
    sys.stdout.flush()
    command = ["/bin/sh", "-c", script] if script is not None else list(argv)
    try:
        completed = subprocess.run(command, check=False)
    except OSError as exc:
        _refuse(f"cannot run `{command[0]}`: {exc.strerror}")
    sys.exit(completed.returncode if completed.returncode >= 0 else 128 - completed.returncode)


def _await(gate: Any, log: Any, approval: Any, wait: float) -> None:
    """Follow the log until the approval is answered; refuse unless it is granted."""
    import time

    deadline = time.monotonic() + wait
    while True:
        gate.ensure_open()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _refuse(f"approval {approval} got no answer within {wait:g}s; not run")
        outcome = log.wait_for_approval(approval, min(remaining, 0.25))
        if outcome.status == "pending":
            continue
        if outcome.granted:
            return
        who = f" by {outcome.by}" if outcome.by else ""
        why = f": {outcome.reason}" if outcome.reason else ""
        _refuse(f"approval {approval} was {outcome.status}{who}{why}; not run")


def register(group: click.Group) -> None:
    group.add_command(exec_command)
