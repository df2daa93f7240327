"""Serving agents over streamable HTTP (`--listen HOST:PORT`): every request carries a
bearer token, verified by `subguard.identity` (signature, issuer, audience, expiry), and
its claims are the subject. One MCP session (`Mcp-Session-Id`, else one token) is one
subguard session, bound to the subject that opened it: another subject presenting the
same session id is refused. A token that fails verification, expiry included, gets 401
before the MCP server sees the request.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from subguard.adapters._gate import Gate
from subguard.adapters.mcp._calls import ToolSpec
from subguard.adapters.mcp._proxy import GuardServer
from subguard.adapters.mcp._session import McpSession
from subguard.adapters.mcp._upstream import Upstream
from subguard.engine import Engine, Resource, Subject
from subguard.identity import IdentityConfig, TokenError, TokenVerifier

__all__ = ["parse_listen", "serve_http"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


#: Live sessions kept in memory; the least recently used beyond this are let go.
MAX_SESSIONS = 4096


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) → `(host, port)`; `ValueError` otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"`{value}` is not HOST:PORT")
    return host, int(port)


def bearer(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Sessions:
    """The guarded session of each HTTP request, by MCP session id and verified subject."""

    def __init__(
        self,
        engine: Engine,
        verifier: TokenVerifier,
        *,
        resource: Resource,
        spec: ToolSpec,
        server: str,
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.resource = resource
        self.spec = spec
        self.server = server
        self._lock = threading.Lock()
        self._sessions: dict[str, McpSession] = {}

    def subject(self, authorization: str | bytes | None) -> Subject:
        """The verified subject of a request's `Authorization` header, or `TokenError`."""
        token = bearer(authorization)
        if token is None:
            raise TokenError("malformed", "no bearer token")
        return self.verifier.verify(token).subject

    def for_request(self, ctx: ServerRequestContext[Any]) -> McpSession:
        request = ctx.request
        headers = getattr(request, "headers", None)
        if headers is None:
            raise MCPError(
                code=types.INVALID_REQUEST, message="no HTTP request to identify the agent by"
            )
        try:
            subject = self.subject(headers.get("authorization"))
        except TokenError as exc:
            raise MCPError(code=types.INVALID_REQUEST, message=f"unauthorized: {exc}") from None
        token = bearer(headers.get("authorization")) or ""
        key = headers.get("mcp-session-id") or "t" + hashlib.sha256(token.encode()).hexdigest()[:24]
        evicted: list[McpSession] = []
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                gate = Gate(
                    self.engine, subject=subject, resource=self.resource, session=f"mcp-{key}"
                )
                session = self._sessions[key] = McpSession(gate, server=self.server, spec=self.spec)
                while len(self._sessions) > MAX_SESSIONS:
                    # the oldest goes; if it comes back, its gate is rebuilt from the log
                    # (a terminated or killed session stays so)
                    evicted.append(self._sessions.pop(next(iter(self._sessions))))
            else:
                self._sessions[key] = self._sessions.pop(key)  # most recently used last
        for old in evicted:
            old.gate.close("the session was idle the longest")
        if session.gate.subject.id != subject.id:
            raise MCPError(
                code=types.INVALID_REQUEST, message="this MCP session belongs to another subject"
            )
        return session

    def ended(self, session_id: str | bytes | None) -> bool:
        """Whether the MCP session `session_id` was ended (terminated, killed, revoked)."""
        if isinstance(session_id, bytes):
            session_id = session_id.decode("latin-1")
        if not session_id:
            return False
        with self._lock:
            session = self._sessions.get(session_id)
        return session is not None and session.gate.closed

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.gate.close("the server stopped")


def require_token(app: ASGIApp, sessions: Sessions) -> ASGIApp:
    """Refuse (401) an HTTP request whose bearer token does not verify, before the MCP
    server sees it; answer 404 for an MCP session that was ended (the client's signal
    that the session is gone)."""

    async def guarded(
        scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or ())
            try:
                sessions.subject(headers.get(b"authorization"))
            except TokenError as exc:
                body = f'{{"error": "unauthorized", "message": "{_quote(str(exc))}"}}'.encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer error="invalid_token"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            if sessions.ended(headers.get(b"mcp-session-id")):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error": "the MCP session was ended"}',
                    }
                )
                return
        await app(scope, receive, send)

    return guarded


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


async def serve_http(
    engine: Engine,
    upstream: Upstream,
    *,
    host: str,
    port: int,
    identity: IdentityConfig,
    resource: Resource,
    spec: ToolSpec,
    approval_timeout: float,
    started: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted."""
    async with upstream:
        sessions = Sessions(
            engine, TokenVerifier(identity), resource=resource, spec=spec, server=upstream.name
        )
        guard = GuardServer(upstream, sessions.for_request, approval_timeout=approval_timeout)
        app = guard.server.streamable_http_app(host=host)
        config = uvicorn.Config(
            require_token(app, sessions), host=host, port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        try:
            await server.serve()
        finally:
            sessions.close()
