"""The proxy's listener: one engine, one decision log and one schema shared by every
session; the map from the keys clients hold to their sessions (for CancelRequest); TLS.

    server = ProxyServer(config, engine)
    await server.start(); await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import attrs

from subguard.adapters._decider import AsyncDecider
from subguard.adapters._gate import Gate
from subguard.adapters._masking import tagged_columns
from subguard.adapters._schema import PG_COLUMNS, with_tags
from subguard.adapters.postgres import wire
from subguard.adapters.postgres.config import ProxyConfig
from subguard.adapters.postgres.session import ProxySession
from subguard.adapters.postgres.upstream import UpstreamError, connect, simple_query
from subguard.engine import Engine, Resource
from subguard.identity import Identity
from subguard.log import DecisionLog

__all__ = ["ProxyServer", "introspect_schema"]

logger = logging.getLogger("subguard.proxy")


async def introspect_schema(config: ProxyConfig) -> dict[str, Any]:
    """The upstream's tables and columns (the first schema on the search path wins), with
    the configured column tags."""
    upstream = await connect(config.upstream, {"application_name": "subguard-introspection"})
    try:
        rows = await simple_query(upstream, PG_COLUMNS)
    finally:
        upstream.close()
    first: dict[str, Any] = {}
    columns: list[tuple[str, str, str]] = []
    for table, column, type_, rank in rows:
        if table is None or column is None:
            continue
        if first.setdefault(table, rank) != rank:
            continue
        columns.append((table, column, type_ or ""))
    return with_tags(columns, config.column_tags)


class ProxyServer:
    """Accepts clients and runs one `ProxySession` each."""

    def __init__(
        self, config: ProxyConfig, engine: Engine, *, schema: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        self.engine = engine
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="subguard-proxy"
        )
        #: ordinary statements are decided in the loop and committed in batches
        self.decider = AsyncDecider(engine, inline_commit=_memory_log(engine))
        #: statements held for a responder wait here, one thread each, never on `executor`
        self.hold_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(config.max_connections, 16), thread_name_prefix="subguard-proxy-hold"
        )
        self.resource = Resource(
            name=config.resource_name,
            kind="postgres",
            dialect="postgres",
            env=config.resource_env,
            tags=dict(config.resource_tags),
            schema=schema,
        )
        self.tagged = tagged_columns(schema)
        self._carried: dict[str, frozenset[tuple[str, str]]] = {}
        self._carried_lock = threading.Lock()
        self.policy_version = id(engine.policy)
        self.ssl_context = _ssl_context(config)
        self.sessions: dict[int, ProxySession] = {}
        self.live: set[ProxySession] = set()
        self._server: asyncio.Server | None = None
        self._refreshing = False
        self._refresh_again = False
        self.events: list[tuple[str, dict[str, Any]]] = []
        #: where connections and what their statements did are recorded (after the fact)
        self.log: DecisionLog | None = engine.log if isinstance(engine.log, DecisionLog) else None

    # -- sessions ----------------------------------------------------------------------------
    def new_gate(self, identity: Identity, session_id: str) -> Gate:
        return Gate(
            self.engine,
            subject=identity.subject,
            resource=self.resource,
            session=session_id,
            approval_timeout=self.config.approval_timeout,
            mask_key=self.config.mask_key,
        )

    def register(self, session: ProxySession) -> None:
        self.sessions[session.key[0]] = session

    def forget(self, session: ProxySession) -> None:
        if self.sessions.get(session.key[0]) is session:
            del self.sessions[session.key[0]]
        self.live.discard(session)

    def log_event(self, what: str, **fields: Any) -> None:
        """An operational line on the `subguard.proxy` logger (session start and end,
        refused logins); the decisions, the sessions' start and end and what each
        statement did are in the decision log."""
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s %s", what, " ".join(f"{k}={v!r}" for k, v in fields.items()))

    async def cancel(self, pid: int, secret: int) -> None:
        """Forward a CancelRequest with the database's key for the client's session."""
        session = self.sessions.get(pid)
        if session is None or not hmac.compare_digest(
            session.key[1].to_bytes(4, "big"), (secret & 0xFFFFFFFF).to_bytes(4, "big")
        ):
            return
        if session.holding:
            session.cancel_hold.set()  # the statement is still with the proxy, not the database
            return
        upstream = session.upstream
        if upstream is None:
            return
        target = self.config.upstream
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), 5)
        except (OSError, TimeoutError):
            return
        writer.write(wire.cancel_request(upstream.pid, upstream.secret))
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    # -- shared state ------------------------------------------------------------------------
    def carried(
        self, text: str, compute: Callable[[], frozenset[tuple[str, str]]]
    ) -> frozenset[tuple[str, str]]:
        with self._carried_lock:
            hit = self._carried.get(text)
        if hit is not None:
            return hit
        value = compute()
        with self._carried_lock:
            if len(self._carried) >= 4096:
                self._carried.clear()
            self._carried[text] = value
        return value

    def refresh_schema(self) -> None:
        """Read the schema again (after DDL a session ran); one refresh at a time."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            while True:
                self._refresh_again = False
                try:
                    schema = await introspect_schema(self.config)
                except (
                    UpstreamError,
                    OSError,
                    asyncio.IncompleteReadError,
                    wire.ProtocolViolation,
                ) as exc:
                    logger.warning("schema refresh failed: %s", exc)
                    return
                self.resource = attrs.evolve(self.resource, schema=schema)
                self.tagged = tagged_columns(schema)
                with self._carried_lock:
                    self._carried.clear()
                if not self._refresh_again:
                    return
        finally:
            self._refreshing = False

    # -- serving -----------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.live) >= self.config.max_connections:
            writer.write(
                wire.error_response("53300", "too many connections to the proxy", severity="FATAL")
            )
            writer.close()
            return
        session = ProxySession(self, reader, writer)
        self.live.add(session)
        await session.run()

    async def start(self) -> tuple[str, int]:
        host, port = self.config.listen
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=1 << 16, backlog=1024
        )
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.live):
            session.terminate("the proxy is shutting down")
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.decider.close()
        self.hold_executor.shutdown(wait=False, cancel_futures=True)


def _memory_log(engine: Engine) -> bool:
    """Whether the engine records to a memory store (no I/O: commit in the loop)."""
    log = engine.log
    return isinstance(log, DecisionLog) and log.store.kind == "memory"


def _ssl_context(config: ProxyConfig) -> ssl.SSLContext | None:
    if not config.tls_cert or not config.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context
