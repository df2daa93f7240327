"""One client connection through the proxy: the startup and token login, the upstream
connection opened only for a verified identity, and two loops: client → database
(every statement decided and committed by the gate before it is forwarded) and
database → client (responses matched to what was forwarded; masked rows rewritten).

A refusal is written in protocol order: the proxy first lets the database answer what
was already forwarded (sending a Sync of its own if the client's batch has none yet),
fails an open transaction block the way a PostgreSQL error would, then writes the
ErrorResponse and, at the client's Sync, the ReadyForQuery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import secrets
import ssl
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from subguard.adapters._decider import INLINE_TEXT_CHARS
from subguard.adapters._errors import ApprovalRequired, Denied, Refused, Terminated, describe
from subguard.adapters._masking import tagged_in_output, unjudged_column
from subguard.adapters.postgres import wire
from subguard.adapters.postgres.results import (
    Owed,
    Portal,
    Prepared,
    ResultTracker,
    safe_encoding,
    translate,
)
from subguard.adapters.postgres.upstream import Upstream, UpstreamError, connect
from subguard.engine import Decision, SqlRequest
from subguard.identity import Identity, TokenError, verify_token
from subguard.sql import output_lineage

if TYPE_CHECKING:
    from subguard.adapters._gate import Gate
    from subguard.adapters.postgres.server import ProxyServer

__all__ = ["ProxySession"]

logger = logging.getLogger("subguard.proxy")

#: Startup parameters passed on to the database; any other is dropped (`options` could
#: set server settings the policy never saw, `replication` is refused outright).
FORWARDED_PARAMETERS = frozenset(
    {
        "application_name",
        "client_encoding",
        "DateStyle",
        "TimeZone",
        "extra_float_digits",
        "IntervalStyle",
    }
)
_DDL = frozenset({"create", "alter", "drop"})
_READ = 65536


class _Cancelled(Denied):
    """The client cancelled a statement while it was held for approval."""


class _Closed(Exception):
    """The session is over (the client left, or the proxy closed it)."""


def _refusal_code(exc: Refused) -> str:
    if isinstance(exc, _Cancelled):
        return "57014"  # query_canceled, as the server says for a cancelled statement
    return "57P01" if isinstance(exc, Terminated) else "42501"


class ProxySession:
    """One client connection. Created by the server, run once."""

    def __init__(
        self, server: ProxyServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = (
            f"{peer[0]}:{peer[1]}"
            if isinstance(peer, tuple) and len(peer) >= 2
            else str(peer or "local")
        )
        self.peer_host = peer[0] if isinstance(peer, tuple) and peer else ""
        self.tls = False
        self.identity: Identity | None = None
        self.gate: Any = None
        self.upstream: Upstream | None = None
        self.session_id = f"pg-{uuid.uuid4()}"
        self.params: dict[str, str] = {}
        self.key = (secrets.randbelow(2**31 - 1) + 1, secrets.randbits(31))
        self.tracker = ResultTracker()
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_until_sync = False
        self.closed = False
        self.close_reason = ""
        self.holding = False
        self.cancel_hold = threading.Event()
        self._relay_task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._schema_dirty = False
        self._outgoing: list[bytes] = []
        self.started: float | None = None
        self.loop = asyncio.get_running_loop()

    # -- life ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            try:
                await asyncio.wait_for(self._startup(), self.server.config.startup_timeout)
            except TimeoutError:
                self._fatal("08006", "the startup and login did not complete in time")
                return
            if self.closed or self.identity is None:
                return
            await self._client_loop()
        except _Closed:
            pass
        except wire.ProtocolViolation as exc:
            self._fatal("08P01", f"protocol violation: {exc}")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        except Exception:  # a bug must close this connection only, never the proxy
            logger.exception("proxy session %s failed", self.session_id)
            self._fatal("XX000", "internal error in the proxy; the connection is closed")
        finally:
            self._shutdown("the client disconnected")

    def _shutdown(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            if self.started is not None:
                seconds = time.monotonic() - self.started
                self.server.log_event(
                    "session ended",
                    session=self.session_id,
                    seconds=round(seconds, 3),
                    reason=reason,
                )
                log = self.server.log
                if log is not None:
                    self._record(log.session_closed, self.session_id, duration_ms=seconds * 1000.0, reason=reason)
        if self._expiry is not None:
            self._expiry.cancel()
        if self.gate is not None and not self.gate.closed:
            self.gate.close(reason)
        if self.upstream is not None:
            self.upstream.close()
        if self._relay_task is not None and not self._relay_task.done():
            self._relay_task.cancel()
        self.tracker.fail_waiters(_Closed())
        with contextlib.suppress(Exception):
            self.writer.close()
        self.server.forget(self)

    def _record(self, method: Any, *args: Any, **kwargs: Any) -> None:
        """Queue a connection event; a failure is logged, never raised: the decision
        before each statement is the guarantee, these records are best effort."""
        try:
            method(*args, **kwargs)
        except Exception:
            logger.exception("proxy session %s: a connection event could not be recorded", self.session_id)

    def _completed(
        self,
        prepared: Prepared,
        statement: int,
        outcome: str,
        command: str | None,
        rows: int | None,
        ms: float,
        sqlstate: str | None,
    ) -> None:
        """The database ran a statement the gate let through: record what it did, after
        the fact (queued; the relay never waits for the log)."""
        log = self.server.log
        if log is not None:
            self._record(
                log.statement_completed,
                self.session_id,
                decision=str(prepared.decision.id),
                statement=statement,
                outcome=outcome,
                command=command,
                rows=rows,
                ms=ms,
                sqlstate=sqlstate,
            )

    def _fatal(self, code: str, text: str) -> None:
        """Tell the client why, then close everything."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self.writer.write(wire.error_response(code, text, severity="FATAL"))
        self._shutdown(text)

    def terminate(self, reason: str) -> None:
        """Called (in the loop) when the gate closes: a terminate decision, a revocation,
        a kill, the token's expiry. Idle or not, the client is told and disconnected."""
        if self.closed:
            return
        self._fatal("57P01", reason)

    def _gate_closed(self, error: Terminated) -> None:
        """The gate's close callback: any thread (the log's watcher, a worker)."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: so is the session
            self.loop.call_soon_threadsafe(self.terminate, error.message)

    # -- startup and login -----------------------------------------------------------------
    async def _read_startup(self) -> tuple[int, bytes]:
        header = await self.reader.readexactly(4)
        length = wire.i32(header)
        if length < 8 or length > 10000:
            raise wire.ProtocolViolation("startup packet length out of bounds")
        body = await self.reader.readexactly(length - 4)
        return wire.i32(body), body

    async def _startup(self) -> None:
        for _ in range(3):
            code, body = await self._read_startup()
            if code == wire.SSL_REQUEST:
                if self.tls:
                    raise wire.ProtocolViolation("SSLRequest after TLS was established")
                context = self.server.ssl_context
                if context is None:
                    self.writer.write(b"N")
                    continue
                self.writer.write(b"S")
                await self.writer.drain()
                await self.writer.start_tls(context)
                self.tls = True
                continue
            if code == wire.GSSENC_REQUEST:
                self.writer.write(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                if len(body) == 12:
                    await self.server.cancel(wire.i32(body, 4), wire.i32(body, 8))
                self._shutdown("cancel request handled")
                return
            if code != wire.PROTOCOL_3:
                self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return
            _, params = wire.parse_startup(body)
            await self._login(params)
            return
        raise wire.ProtocolViolation("too many negotiation requests")

    async def _login(self, params: dict[str, str]) -> None:
        if "replication" in params and params["replication"].lower() not in (
            "false",
            "off",
            "0",
            "no",
        ):
            self._fatal("28000", "replication connections are not accepted by the proxy")
            return
        database = params.get("database") or params.get("user", "")
        allowed = {self.server.config.upstream.database, self.server.config.resource_name}
        if database not in allowed:
            self._fatal(
                "3D000",
                f"database `{database}` is not served here (this proxy serves `{self.server.config.upstream.database}`)",
            )
            return
        if not (self.tls or _is_loopback(self.peer_host)):
            self._fatal("28000", "token login needs TLS when the client is not on this host")
            return
        self.writer.write(wire.authentication(3))  # AuthenticationCleartextPassword
        await self.writer.drain()
        header = await self.reader.readexactly(5)
        length = wire.i32(header, 1)
        if header[:1] != b"p" or length < 5 or length > 20000:
            raise wire.ProtocolViolation("expected a password message")
        body = await self.reader.readexactly(length - 4)
        token = body.rstrip(b"\0")
        try:
            identity = verify_token(token, self.server.config.identity)
        except TokenError as exc:
            self.server.log_event("token refused", peer=self.peer, code=exc.code)
            self._fatal("28P01", f"token refused: {exc.code}: {exc.message}")
            return
        self.identity = identity
        self.params = {k: v for k, v in params.items() if k in FORWARDED_PARAMETERS}
        gate = self.server.new_gate(identity, self.session_id)
        self.gate = gate
        if gate.closed:  # revoked already: no database connection for it
            self._fatal("28000", gate._closed.message if gate._closed is not None else "refused")
            return
        gate.on_close(self._gate_closed)
        if identity.expires_at is not None:
            delay = max(identity.expires_at - time.time(), 0.0)
            self._expiry = self.loop.call_later(delay, gate.close, "the token expired")
        try:
            self.upstream = await connect(self.server.config.upstream, self.params)
        except UpstreamError as exc:
            self._fatal(
                exc.code if exc.code.startswith(("08", "28", "3D", "53", "57")) else "08006",
                f"the database cannot be reached through the proxy: {exc.message}",
            )
            return
        out = [wire.authentication(0)]
        out.extend(wire.parameter_status(k, v) for k, v in self.upstream.parameters.items())
        self.tracker.encoding = self.upstream.parameters.get("client_encoding", "UTF8")
        if not safe_encoding(self.tracker.encoding):
            self._fatal(
                "22023",
                f"client_encoding `{self.tracker.encoding}` is not accepted by the proxy (use UTF8)",
            )
            return
        out.append(wire.backend_key_data(*self.key))
        out.append(wire.ready_for_query(self.upstream.status))
        self.tracker.status = self.upstream.status
        self.writer.write(b"".join(out))
        self.server.register(self)
        self.started = time.monotonic()
        self.server.log_event(
            "session started",
            session=self.session_id,
            peer=self.peer,
            subject=identity.subject.id,
            application_name=params.get("application_name", ""),
            tls=self.tls,
        )
        log = self.server.log
        if log is not None:
            self._record(
                log.session_opened,
                self.session_id,
                subject=identity.subject.id,
                adapter="postgres",
                peer=self.peer,
                application_name=params.get("application_name", ""),
                tls=self.tls,
            )
            self.tracker.on_complete = self._completed
        self._relay_task = asyncio.create_task(self._relay())

    # -- client → database -----------------------------------------------------------------
    async def _client_loop(self) -> None:
        buffer = wire.MessageBuffer(self.server.config.max_message_bytes)
        idle = self.server.config.idle_timeout or None
        while not self.closed:
            try:
                data = await asyncio.wait_for(self.reader.read(_READ), idle)
            except TimeoutError:
                self._fatal("57P05", "the connection was idle too long")
                return
            if not data:
                return
            buffer.feed(data)
            for kind, body, whole in buffer.messages():
                await self._on_client(kind, body, whole)
                if self.closed:
                    return
            self._flush()
            upstream = self.upstream
            if upstream is not None:
                await upstream.writer.drain()

    def _forward(self, data: bytes, owed: Owed | None = None) -> None:
        """Queue `data` for the database (written at the end of the client's chunk, or
        before the proxy waits for anything)."""
        if owed is not None:
            self.tracker.push(owed)
        self._outgoing.append(data)

    def _flush(self) -> None:
        if self._outgoing and self.upstream is not None and not self.closed:
            self.upstream.writer.write(b"".join(self._outgoing))
        self._outgoing.clear()

    async def _on_client(self, kind: bytes, body: memoryview, whole: bytes) -> None:
        try:
            await self._dispatch(kind, body, whole)
        except Terminated as exc:
            self.terminate(exc.message)
            raise _Closed from None

    async def _dispatch(self, kind: bytes, body: memoryview, whole: bytes) -> None:
        if self.skip_until_sync and kind != b"S":
            if kind == b"X":
                raise _Closed
            return  # after an error the protocol discards everything up to the Sync
        if kind == b"Q":
            await self._simple_query(wire.query(body), whole)
        elif kind == b"P":
            await self._parse(wire.parse_parse(body), whole)
        elif kind == b"B":
            await self._bind(wire.parse_bind(body), whole)
        elif kind == b"D":
            which, name = wire.parse_close_or_describe(body)
            if which == "S":
                prepared = self.statements.get(name)
                if prepared is None:
                    await self._refuse_local(
                        "26000", f"prepared statement `{name}` does not exist", extended=True
                    )
                    return
                self._forward(whole, Owed("DS", prepared))
            else:
                portal = self.portals.get(name)
                if portal is None:
                    await self._refuse_local(
                        "34000", f"portal `{name}` does not exist", extended=True
                    )
                    return
                self._forward(whole, Owed("DP", portal))
        elif kind == b"E":
            portal_name, _limit = wire.parse_execute(body)
            portal = self.portals.get(portal_name)
            if portal is None:
                await self._refuse_local(
                    "34000", f"portal `{portal_name}` does not exist", extended=True
                )
                return
            self.gate.ensure_open()
            if (
                portal.statement.masked
                and portal.fields is None
                and portal.statement.fields is None
            ):
                # the rows must be placed: learn their columns first, for the proxy alone
                self._forward(
                    wire.message(b"D", b"P" + portal_name.encode() + b"\0"),
                    Owed("DP", portal, swallow=True),
                )
            self._forward(whole, Owed("E", portal))
        elif kind == b"C":
            which, name = wire.parse_close_or_describe(body)
            (self.statements if which == "S" else self.portals).pop(name, None)
            self._forward(whole, Owed("C"))
        elif kind == b"S":
            if self.skip_until_sync:
                self.skip_until_sync = False
                self.writer.write(wire.ready_for_query(self.tracker.status))
                return
            self._forward(whole, Owed("S"))
        elif kind == b"H":
            self._forward(whole)
        elif kind in (b"d", b"c", b"f"):
            self._forward(whole)  # COPY FROM STDIN data, after its COPY was decided
        elif kind == b"X":
            self._forward(whole)
            self._flush()
            raise _Closed
        elif kind == b"F":
            await self._refuse_local(
                "42501",
                "function calls over the fast-path interface are not accepted by the proxy",
                extended=True,
            )
        else:
            raise wire.ProtocolViolation(f"unexpected message type `{kind.decode('latin-1')}`")

    # -- deciding ----------------------------------------------------------------------------
    def _judge(self, text: str, decision: Decision | None = None) -> Prepared:
        """In a worker thread: the gate's decision (committed to the log before this
        returns; without waiting for a responder) and where its masks fall; raises
        `Refused`. `decision`: one the gate already made (after a responder's grant)."""
        resource = self.server.resource
        if decision is None:
            decision = self.gate._decide(SqlRequest(text, "postgres"), resource, wait=False)
        sql = decision.input.get("sql") or {}
        statements = sql.get("statements") or ()
        lineage = functools.partial(output_lineage, text, "postgres", resource.schema)
        if decision.masks and any(s.get("kind") == "copy" for s in statements):
            raise Denied(f"refused: COPY cannot be masked: {describe(decision)}", decision)
        plan = self.gate.mask_plan(decision, lineage)
        tagged = self.server.tagged
        if tagged:
            # a tagged column that reaches the result by a path the facts missed was never
            # judged by a mask rule: refuse rather than return it unjudged
            missed = unjudged_column(
                self.server.carried(text, lambda: tagged_in_output(lineage(), tagged)),
                sql.get("columns_read") or (),
            )
            if missed is not None:
                raise Denied(
                    f"refused: tagged column `{missed}` reaches the result but not the facts the policy decided on: {describe(decision)}",
                    decision,
                )
        ddl = any(s.get("kind") in _DDL for s in statements)
        sensitive = bool(decision.masks) or any(
            c.get("tags") for c in sql.get("columns_read") or ()
        )
        return Prepared(
            text,
            decision,
            plan,
            bool(decision.masks),
            ddl,
            self.server.policy_version,
            sensitive=sensitive,
        )

    def _notify_hold(self, _decision: Decision, message: str) -> None:
        notice = wire.notice_response(
            "01000", message, hint="the statement runs once a responder approves it"
        )
        self.loop.call_soon_threadsafe(self._write_if_open, notice)

    def _write_if_open(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    async def _decision(self, text: str) -> Decision:
        """The gate's decision (recorded; not waiting for a responder), or `Refused`. A
        text of ordinary length is decided in the loop with the other sessions' waiting
        statements, as one batch committed on the log's writer thread; a long one on a
        worker thread (its cold analysis must not stall every session)."""
        gate: Gate = self.gate
        request = SqlRequest(text, "postgres")
        resource = self.server.resource
        if len(text) > INLINE_TEXT_CHARS:
            decide = functools.partial(gate._decide, request, resource, wait=False)
            return await self.loop.run_in_executor(self.server.executor, decide)
        gate.ensure_open()
        decision = await self.server.decider.check(
            request, subject=gate.subject, resource=resource, session=gate.session
        )
        return gate.enforce(request, resource, decision, wait=False)

    async def _decide(self, text: str) -> Prepared:
        self._flush()  # what came before in the batch proceeds while this is decided
        run = self.loop.run_in_executor
        try:
            decision = await self._decision(text)
            if decision.masks or self.server.tagged:
                # placing masks (and checking tagged columns) may parse the text again
                return await run(self.server.executor, self._judge, text, decision)
            return self._judge(text, decision)
        except ApprovalRequired as exc:
            if self.gate.approval_timeout <= 0 or exc.decision is None or exc.approval_id is None:
                raise
            held = exc.decision
        # Held: the gate waits for a responder (and re-checks once granted) on a thread of
        # its own, so held statements never take the threads other sessions decide on.
        self.holding = True
        self.cancel_hold.clear()
        try:
            hold = functools.partial(
                self.gate._hold,
                SqlRequest(text, "postgres"),
                self.server.resource,
                held,
                wait=True,
                on_hold=self._notify_hold,
                cancelled=self.cancel_hold,
            )
            try:
                granted = await run(self.server.hold_executor, hold)
            except Denied as exc:
                if self.cancel_hold.is_set():
                    raise _Cancelled(exc.message, exc.decision) from None
                raise
        finally:
            self.holding = False
        return await run(self.server.executor, self._judge, text, granted)

    async def _simple_query(self, text: str, whole: bytes) -> None:
        try:
            prepared = await self._decide(text)
        except Refused as exc:
            await self._refuse(exc, extended=False)
            return
        if self.closed:
            return
        self._schema_dirty |= prepared.ddl
        self._forward(whole, Owed("Q", prepared))

    async def _parse(self, parse: wire.Parse, whole: bytes) -> None:
        try:
            prepared = await self._decide(parse.text)
        except Refused as exc:
            await self._refuse(exc, extended=True)
            return
        if self.closed:
            return
        self._schema_dirty |= prepared.ddl
        self.statements[parse.name] = prepared
        self._forward(whole, Owed("P", prepared))

    async def _bind(self, bind: wire.Bind, whole: bytes) -> None:
        prepared = self.statements.get(bind.statement)
        if prepared is None:
            await self._refuse_local(
                "26000", f"prepared statement `{bind.statement}` does not exist", extended=True
            )
            return
        if prepared.policy != self.server.policy_version:
            # the policy changed since this statement was decided: decide it again
            try:
                again = await self._decide(prepared.text)
            except Refused as exc:
                await self._refuse(exc, extended=True)
                return
            again.fields = prepared.fields
            prepared = self.statements[bind.statement] = again
        portal = Portal(prepared, bind.result_formats)
        self.portals[bind.portal] = portal
        self._forward(whole, Owed("B", portal))

    # -- refusing in protocol order ------------------------------------------------------------
    async def _barrier(self) -> None:
        """Let the database answer everything already forwarded."""
        if self.tracker.needs_sync:
            self._forward(wire.message(b"S"), Owed("S", swallow=True))
        self._flush()
        await self.tracker.wait_idle()

    async def _fail_transaction(self, code: str, text: str) -> None:
        """Inside a transaction block a refusal fails the transaction, as an error would."""
        if self.tracker.status != b"T":
            return
        tag = "sg" + secrets.token_hex(6)
        safe = text.replace("$", "")
        raise_sql = f"DO ${tag}$ BEGIN RAISE EXCEPTION USING ERRCODE = '{code}', MESSAGE = ${tag}m${safe}${tag}m$; END ${tag}$"
        self._forward(wire.query_message(raise_sql), Owed("Q", None, swallow=True))
        self._flush()
        await self.tracker.wait_idle()

    async def _refuse(self, exc: Refused, *, extended: bool) -> None:
        if isinstance(exc, Terminated):
            self.terminate(exc.message)
            raise _Closed
        code = _refusal_code(exc)
        message = exc.message
        hint = None
        if isinstance(exc, ApprovalRequired) and exc.approval_id is not None:
            hint = f"a responder runs `subguard approve {exc.approval_id} --by NAME`"
        await self._refuse_local(code, message, extended=extended, hint=hint)

    async def _refuse_local(
        self, code: str, message: str, *, extended: bool, hint: str | None = None
    ) -> None:
        await self._barrier()
        await self._fail_transaction(code, message)
        if self.closed:
            raise _Closed
        self.writer.write(wire.error_response(code, message, hint=hint))
        if extended:
            self.skip_until_sync = True
        else:
            self.writer.write(wire.ready_for_query(self.tracker.status))

    # -- database → client -------------------------------------------------------------------
    async def _relay(self) -> None:
        assert self.upstream is not None
        reader = self.upstream.reader
        buffer = wire.MessageBuffer(1 << 30)
        try:
            while True:
                data = await reader.read(_READ)
                if not data:
                    break
                buffer.feed(data)
                out: list[bytes] = []
                for kind, body, whole in buffer.messages():
                    piece = self._on_upstream(kind, body, whole)
                    if piece:
                        out.append(piece)
                if out and not self.closed:
                    self.writer.write(b"".join(out))
                    await self.writer.drain()
        except asyncio.CancelledError:
            return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except wire.ProtocolViolation as exc:
            self.loop.call_soon(
                self._fatal, "08P01", f"the database sent a malformed message: {exc}"
            )
            return
        except Exception:
            logger.exception("proxy relay %s failed", self.session_id)
        if not self.closed:
            self.loop.call_soon(self._fatal, "08006", "the database closed the connection")

    def _on_upstream(self, kind: bytes, body: memoryview, whole: bytes) -> bytes | None:
        """What the client receives for one upstream message (None: nothing)."""
        out, fatal = translate(self.tracker, kind, body, whole)
        if fatal is not None:
            self.loop.call_soon(self._fatal, *fatal)
            return None
        if kind == b"Z" and self._schema_dirty:
            self._schema_dirty = False
            self.server.refresh_schema()
        return out


def _is_loopback(host: str) -> bool:
    if not host:
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
