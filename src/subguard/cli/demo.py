"""`subguard demo`: a scripted agent session through the DB-API gate, narrated.

It builds an embedded SQLite shop (users with PII, orders, payments) from generated
data, opens a decision log (a temporary SQLite file, or `--store`), and plays an agent's
session: an allowed read, PII masked in real rows, an unbounded DELETE held, approved
once by a responder and run, then held again, a DROP denied, escalation terminating the
session, a revocation by a separate `subguard revoke` process closing a live connection,
and finally the session's replay from the log and `subguard verify`. Each step checks
what it narrates; the command exits 0 only if every step behaved as told.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

import subguard
from subguard.adapters import dbapi
from subguard.log import DecisionLog, Topic, open_log, read_records

__all__ = ["demo", "register"]

AGENT = "nightly-etl"
RESPONDER = "alice@sec"

POLICY = """\
package demo.guard

import input.sql.statements

# Destructive DDL never runs.
deny contains msg if {
    some s in statements
    s.kind in {"drop", "truncate"}
    msg := sprintf("%s is never allowed", [upper(s.kind)])
}

# Filtering on a PII column is an oracle even when the column is masked.
deny contains msg if {
    some c in input.sql.columns_read
    "pii" in c.tags
    not c.in_output
    msg := sprintf("filtering on PII column %s.%s is not allowed", [c.table, c.column])
}

# Writes that may touch every row wait for a human.
approve contains msg if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
    msg := sprintf("%s without a WHERE needs approval", [upper(s.kind)])
}

# A session that keeps getting refused is probing: end it.
terminate contains msg if {
    input.session.denied >= 2
    msg := sprintf("session ended after %v denied requests", [input.session.denied])
}

# PII that reaches the result is masked, each column its own way.
mask[key] := strategy if {
    some c in input.sql.columns_read
    c.in_output
    "pii" in c.tags
    key := sprintf("%s.%s", [c.table, c.column])
    strategy := object.get(data.strategies, key, "redact")
}

default allow := true
"""

DATA = '{"strategies": {"users.email": "email", "users.ssn": "partial:4", "users.phone": "redact"}}'

TAGS = {
    "users.email": ["pii"],
    "users.ssn": ["pii"],
    "users.phone": ["pii"],
    "payments.card_last4": ["pci"],
}

_FIRST = [
    "Ada",
    "Bruno",
    "Chen",
    "Dana",
    "Emeka",
    "Farah",
    "Goran",
    "Hana",
    "Ines",
    "Jonas",
    "Kiri",
    "Luis",
    "Mei",
    "Nadia",
    "Omar",
    "Priya",
]
_LAST = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Byrne",
    "Iyer",
    "Costa",
]
_DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "inbox.example.io"]
_STATUS = ["paid", "paid", "paid", "shipped", "refunded", "open"]


def build_shop(path: Path, seed: int) -> dict[str, list[str]]:
    """Create the shop database with generated rows; returns its PII values by column."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
                            ssn TEXT, phone TEXT, created_at TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id),
                             total REAL, status TEXT, placed_at TEXT);
        CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id),
                               amount REAL, card_last4 TEXT, method TEXT);
        CREATE TABLE cart_items (id INTEGER PRIMARY KEY, user_id INTEGER, sku TEXT, qty INTEGER);
        """
    )
    users = []
    for i in range(1, 51):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}".lower()
        ssn = f"{rng.randint(100, 899):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"
        phone = f"+1 555 {rng.randint(100, 999):03d} {rng.randint(1000, 9999):04d}"
        created = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        users.append((i, f"{first} {last}", email, ssn, phone, created))
    conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", users)
    orders, payments, carts = [], [], []
    for i in range(1, 201):
        status = rng.choice(_STATUS)
        total = round(rng.uniform(5, 400), 2)
        orders.append(
            (
                i,
                rng.randint(1, 50),
                total,
                status,
                f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
            )
        )
        if status != "open":
            payments.append(
                (i, i, total, f"{rng.randint(0, 9999):04d}", rng.choice(["card", "card", "wallet"]))
            )
    for i in range(1, 61):
        carts.append((i, rng.randint(1, 50), f"SKU-{rng.randint(1000, 9999)}", rng.randint(1, 4)))
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", orders)
    conn.executemany("INSERT INTO payments VALUES (?, ?, ?, ?, ?)", payments)
    conn.executemany("INSERT INTO cart_items VALUES (?, ?, ?, ?)", carts)
    conn.commit()
    conn.close()
    return {
        "email": [u[2] for u in users],
        "ssn": [u[3] for u in users],
        "phone": [u[4] for u in users],
    }


class _Story:
    """Narrates steps and remembers which did not behave as told."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.failures: list[str] = []
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        self.console.print()
        self.console.rule(f"[bold]{self.number}. {title}", align="left")

    def agent(self, sql: str) -> None:
        self.console.print(f"[cyan]agent ▸[/] {escape(sql)}")

    def check(self, ok: bool, told: str) -> None:
        if ok:
            self.console.print(f"  [green]✓[/] {told}")
        else:
            self.console.print(f"  [red]✗ expected: {told}[/]")
            self.failures.append(told)


#: The shell rules of the demo: recursive removal outside /tmp is denied, text that does
#: not parse is denied, other commands run.
SHELL_POLICY = """package demo.shell

import input.command.pipeline

deny contains "the command does not parse" if input.command.parse_error != null

deny contains msg if {
    some inv in pipeline
    inv.program == "rm"
    inv.options["--recursive"] != null
    some path in inv.paths
    not startswith(path, "/tmp/")
    msg := sprintf("`rm -r %s` outside /tmp is never allowed", [path])
}

allow if {
    input.command.program != ""
    input.command.parse_error == null
}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `subguard ARGS` as a separate process (the responder's terminal)."""
    return subprocess.run(
        [sys.executable, "-c", "from subguard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rows_table(cur: Any, rows: list[Any]) -> Table:
    table = Table(show_header=True, header_style="bold")
    for d in cur.description:
        table.add_column(str(d[0]))
    for row in rows:
        table.add_row(*("NULL" if v is None else escape(str(v)) for v in row))
    return table


def _expect(fn: Callable[[], Any], error: type[BaseException]) -> BaseException | None:
    try:
        fn()
    except error as exc:
        return exc
    return None


def _play(console: Console, workdir: Path, store: str, seed: int) -> list[str]:
    story = _Story(console)
    shop = workdir / "shop.db"
    pii = build_shop(shop, seed)
    policy_dir = workdir / "policy"
    policy_dir.mkdir()
    (policy_dir / "demo.guard").write_text(POLICY)
    policy = subguard.load_policy(policy_dir, data=json.loads(DATA))
    console.print(
        Panel.fit(
            f"shop database [bold]{shop}[/] (50 users with PII, 200 orders, payments)\n"
            f"decision log  [bold]{store}[/]\n"
            f"agent [bold]{AGENT}[/] connects through [bold]subguard.adapters.dbapi.guard[/]",
            title="subguard demo",
        )
    )
    log: DecisionLog = open_log(store)
    try:
        engine = subguard.Engine(policy, log=log)
        agent = subguard.Subject(AGENT, groups={"agents"})
        resource = subguard.Resource(name="shop", kind="sqlite", env="prod")
        session = "etl-run-1"
        conn = dbapi.guard(
            sqlite3.connect(shop, check_same_thread=False),
            engine,
            subject=agent,
            resource=resource,
            session=session,
            tags=TAGS,
            mask_key="demo-key",
        )

        story.step("An allowed read")
        sql = "SELECT status, count(*), round(sum(total), 2) FROM orders GROUP BY status ORDER BY status"
        story.agent(sql)
        cur = conn.execute(sql)
        rows = cur.fetchall()
        console.print(_rows_table(cur, rows))
        story.check(len(rows) > 0, "the statement runs unchanged and returns real rows")

        story.step("PII masked in real rows")
        sql = "SELECT u.id, u.name, u.email, u.ssn, u.phone, o.total FROM users u JOIN orders o ON o.user_id = u.id ORDER BY o.id LIMIT 5"
        story.agent(sql)
        cur = conn.execute(sql)
        rows = cur.fetchall()
        console.print(_rows_table(cur, rows))
        values = {str(v) for row in rows for v in row}
        clear = [v for column in pii.values() for v in column if v in values]
        story.check(
            len(rows) == 5 and not clear,
            "email, SSN and phone come back masked; names and totals in clear",
        )
        story.check(
            all(str(r[2]).startswith("****@") for r in rows),
            "emails keep only their domain (`email` strategy)",
        )

        story.step("An unbounded DELETE is held for a human")
        delete = "DELETE FROM cart_items"
        story.agent(delete)
        held = _expect(lambda: conn.execute(delete), subguard.ApprovalRequired)
        approval = getattr(held, "approval_id", None)
        console.print(f"  [yellow]{escape(str(held))}[/]")
        story.check(approval is not None, "the DELETE did not run: it waits for approval")

        story.step(f"A responder ({RESPONDER}) approves it once, through the log")
        if approval is not None:
            console.print(f"[magenta]responder ▸[/] subguard approve {approval} --by {RESPONDER}")
            outcome = log.approve(approval, by=RESPONDER)
            story.check(outcome.granted, "the grant is recorded in the log")
        story.agent(delete + "   (retried)")
        deleted = _expect(
            lambda: story.console.print(f"  deleted {conn.execute(delete).rowcount} rows"),
            subguard.Refused,
        )
        story.check(deleted is None, "the approved statement runs once")
        story.agent(delete + "   (again)")
        again = _expect(lambda: conn.execute(delete), subguard.ApprovalRequired)
        story.check(again is not None, "the once-grant is used up: the same DELETE is held again")

        story.step("A DROP is denied; the connection stays usable")
        story.agent("DROP TABLE payments")
        denied = _expect(lambda: conn.execute("DROP TABLE payments"), subguard.Denied)
        console.print(f"  [red]{escape(str(denied))}[/]")
        story.check(
            isinstance(denied, sqlite3.DatabaseError),
            "refused as the driver's own DatabaseError, naming the rule and decision",
        )
        story.check(
            conn.execute("SELECT count(*) FROM payments").fetchone()[0] > 0,
            "the table is still there and the connection still answers",
        )

        story.step("Escalation terminates the session")
        probe = "SELECT id, name FROM users WHERE ssn LIKE ?"
        story.agent(probe + "   ('123%')")
        probed = _expect(lambda: conn.execute(probe, ("123%",)), subguard.Denied)
        console.print(f"  [red]{escape(str(probed))}[/]")
        story.check(probed is not None, "filtering on a PII column is denied")
        story.agent("SELECT count(*) FROM orders")
        ended = _expect(lambda: conn.execute("SELECT count(*) FROM orders"), subguard.Terminated)
        console.print(f"  [bold red]{escape(str(ended))}[/]")
        story.check(
            ended is not None and conn.closed,
            "after two denials the next request ends the session and closes the connection",
        )
        story.check(
            _expect(lambda: conn.execute("SELECT 1"), subguard.Terminated) is not None,
            "every later call on it is refused",
        )

        story.step("A revocation from another process closes a live connection")
        second = dbapi.guard(
            sqlite3.connect(shop, check_same_thread=False),
            engine,
            subject=agent,
            resource=resource,
            session="etl-run-2",
            tags=TAGS,
        )
        story.agent("SELECT count(*) FROM users   (new session etl-run-2)")
        story.check(
            second.execute("SELECT count(*) FROM users").fetchone()[0] == 50, "a new session works"
        )
        console.print(
            f"[magenta]responder ▸[/] subguard revoke {AGENT} --reason 'credential leaked' --store …"
        )
        revoked = _cli(
            "revoke", AGENT, "--reason", "credential leaked", "--by", RESPONDER, "--store", store
        )
        story.check(
            revoked.returncode == 0, "`subguard revoke` (a separate process) records the revocation"
        )
        committed = time.monotonic()
        while not second.closed and time.monotonic() - committed < 2.0:
            time.sleep(0.01)
        waited = time.monotonic() - committed
        console.print(
            f"  the idle connection was closed {waited * 1000:.0f} ms after the revocation committed"
        )
        story.check(
            second.closed and waited < 1.0, "the idle connection is closed within one second"
        )
        story.check(
            _expect(lambda: second.execute("SELECT 1"), subguard.Terminated) is not None,
            "its next call is refused as terminated",
        )

        story.step(f"Replay of session {session} from the log")
        replay = Table(show_header=True, header_style="bold")
        for column in ("#", "effect", "statement (redacted)", "why"):
            replay.add_column(column)
        effects = []
        for n, record in enumerate(
            (
                r
                for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])
                if r.session == session
            ),
            1,
        ):
            state = record.state
            effects.append(state["effect"])
            why = "; ".join(
                r["message"] for r in state.get("reasons") or [] if r.get("message") != "allowed"
            )
            replay.add_row(str(n), state["effect"], escape(state["text"]), escape(why))
        console.print(replay)
        story.check(
            effects
            == [
                "allow",
                "mask",
                "approve",
                "allow",
                "approve",
                "deny",
                "allow",
                "deny",
                "terminate",
            ],
            "the log holds every decision of the session, in order, without literal values",
        )

        story.step(
            "Another agent (deploy-bot) runs shell commands through the gate (`subguard exec`)"
        )
        shell_rules = workdir / "shell-policy"
        shell_rules.mkdir()
        (shell_rules / "shell.guard").write_text(SHELL_POLICY)
        gate = ("exec", "--rules", str(shell_rules), "--store", store, "--subject", "deploy-bot", "--group", "agents",
                "--session", "shell-1")  # fmt: skip
        story.agent(f"subguard exec … -- ls {workdir}")
        listed = _cli(*gate, "--", "ls", str(workdir))
        story.check(
            listed.returncode == 0 and "shop.db" in listed.stdout,
            "`ls` is allowed and runs: its own output and status",
        )
        hidden = "echo 'rm -rf /etc' | bash"
        story.agent(f"subguard exec … --shell {hidden!r}")
        refused = _cli(*gate, "--shell", hidden)
        console.print(escape(refused.stderr.strip()))
        story.check(
            refused.returncode == 126 and "rm -r" in refused.stderr,
            "`rm -rf` piped into a shell is seen and denied; nothing starts (exit 126)",
        )

        story.step("subguard verify")
        verified = _cli("verify", "--store", store)
        console.print(escape(verified.stdout.strip() or verified.stderr.strip()))
        story.check(verified.returncode == 0, "the hash chains verify")
    finally:
        log.close()
    return story.failures


@click.command()
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="decision log (default: a SQLite file in a temporary directory)",
)
@click.option("--seed", default=1842, show_default=True, help="seed of the generated sample data")
def demo(store_url: str | None, seed: int) -> None:
    """Play a scripted agent session through the DB-API gate, narrated."""
    console = Console()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="subguard-demo-") as tmp:
        workdir = Path(tmp)
        store = store_url or f"sqlite:///{workdir / 'decisions.db'}"
        failures = _play(console, workdir, store, seed)
    console.print()
    elapsed = time.monotonic() - started
    if failures:
        console.print(
            f"[bold red]{len(failures)} step(s) did not behave as narrated[/] ({elapsed:.1f}s)"
        )
        sys.exit(1)
    console.print(f"[bold green]every step behaved as narrated[/] ({elapsed:.1f}s)")


def register(group: click.Group) -> None:
    group.add_command(demo)
