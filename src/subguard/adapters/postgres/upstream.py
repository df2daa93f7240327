"""The proxy's own connection to the database: startup, authentication (trust,
cleartext, MD5, SCRAM-SHA-256) with the credential only the proxy holds, and a small
simple-query runner for introspection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import Mapping

import attrs

from subguard.adapters.postgres import wire
from subguard.errors import ConfigError

__all__ = ["Upstream", "UpstreamError", "UpstreamTarget", "connect", "simple_query"]

#: Largest message accepted from the database (a DataRow can be big).
MAX_UPSTREAM_MESSAGE = 1 << 30


class UpstreamError(Exception):
    """The database could not be reached or refused the proxy. `code` is a SQLSTATE."""

    def __init__(self, message: str, code: str = "08006") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@attrs.frozen
class UpstreamTarget:
    """Where the database is and whom the proxy logs in as."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = attrs.field(default=None, repr=False)
    connect_timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, *, password: str | None = None) -> UpstreamTarget:
        """From `postgresql://user@host:port/db`. A password in the URL is refused: it
        would sit on a command line or in a file meant for settings."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError(f"upstream `{_safe(url)}`: the URL must start with postgresql://")
        if parts.password is not None:
            raise ConfigError(
                "upstream: the URL carries a password; give it in SUBGUARD_UPSTREAM_PASSWORD or a password file"
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError(f"upstream `{_safe(url)}`: the port is not a number") from None
        host = parts.hostname or "127.0.0.1"
        user = urllib.parse.unquote(parts.username or "")
        database = urllib.parse.unquote(parts.path.lstrip("/")) or user
        if not user:
            raise ConfigError(f"upstream `{_safe(url)}`: the URL names no user")
        return cls(host, port, user, database, password)


def _safe(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@attrs.define
class Upstream:
    """An authenticated database connection, ready for queries."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parameters: dict[str, str]
    pid: int
    secret: int
    status: bytes = b"I"

    def close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(wire.message(b"X"))
            self.writer.close()


async def _read(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    kind = header[:1]
    length = wire.i32(header, 1)
    if length < 4 or length > MAX_UPSTREAM_MESSAGE:
        raise UpstreamError("the database sent a message of impossible length")
    return kind, await reader.readexactly(length - 4)


async def connect(target: UpstreamTarget, params: Mapping[str, str]) -> Upstream:
    """Open and authenticate a connection; `params` are extra startup parameters."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), target.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        raise UpstreamError(
            f"cannot reach the database at {target.host}:{target.port}: {exc}"
        ) from None
    try:
        return await asyncio.wait_for(
            _handshake(reader, writer, target, params), target.connect_timeout
        )
    except TimeoutError:
        writer.close()
        raise UpstreamError("the database did not complete the login in time") from None
    except (OSError, asyncio.IncompleteReadError, wire.ProtocolViolation) as exc:
        writer.close()
        raise UpstreamError(
            f"the connection to the database failed during login ({type(exc).__name__})"
        ) from None
    except UpstreamError:
        writer.close()
        raise


async def _handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    target: UpstreamTarget,
    params: Mapping[str, str],
) -> Upstream:
    startup = {"user": target.user, "database": target.database, **params}
    writer.write(wire.startup_message(startup))
    scram: _Scram | None = None
    parameters: dict[str, str] = {}
    pid = secret = 0
    while True:
        kind, body = await _read(reader)
        if kind == b"R":
            code = wire.i32(body)
            if code == 0:
                continue
            if code == 3:
                writer.write(wire.message(b"p", _password(target) + b"\0"))
            elif code == 5:
                salt = body[4:8]
                inner = hashlib.md5(_password(target) + target.user.encode()).hexdigest().encode()
                digest = b"md5" + hashlib.md5(inner + salt).hexdigest().encode()
                writer.write(wire.message(b"p", digest + b"\0"))
            elif code == 10:
                mechanisms = body[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechanisms:
                    raise UpstreamError(
                        "the database asks for a SASL mechanism the proxy does not speak", "28000"
                    )
                scram = _Scram(_password(target))
                first = scram.client_first()
                writer.write(
                    wire.message(b"p", b"SCRAM-SHA-256\0" + len(first).to_bytes(4, "big") + first)
                )
            elif code == 11 and scram is not None:
                writer.write(wire.message(b"p", scram.client_final(body[4:])))
            elif code == 12 and scram is not None:
                scram.verify_server(body[4:])
            else:
                raise UpstreamError(
                    f"the database asks for an authentication method ({code}) the proxy does not speak",
                    "28000",
                )
            await writer.drain()
        elif kind == b"S":
            name, _, rest = body.partition(b"\0")
            parameters[name.decode("utf-8", "replace")] = rest.rstrip(b"\0").decode(
                "utf-8", "replace"
            )
        elif kind == b"K":
            pid, secret = wire.i32(body, 0), wire.i32(body, 4)
        elif kind == b"Z":
            return Upstream(reader, writer, parameters, pid, secret, bytes(body[:1]))
        elif kind == b"E":
            fields = wire.parse_error_fields(body)
            raise UpstreamError(
                f"the database refused the proxy's login: {fields.get('M', '')}",
                fields.get("C", "08006"),
            )
        elif kind == b"N":
            continue
        else:
            raise UpstreamError(f"unexpected message `{kind.decode('latin-1')}` during login")


def _password(target: UpstreamTarget) -> bytes:
    if target.password is None:
        raise UpstreamError(
            "the database asks for a password; set SUBGUARD_UPSTREAM_PASSWORD or a password file",
            "28P01",
        )
    return target.password.encode("utf-8")


class _Scram:
    """SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def client_first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def client_final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs_ = dict(item.split("=", 1) for item in text.split(","))
        nonce, salt, iterations = attrs_["r"], base64.b64decode(attrs_["s"]), int(attrs_["i"])
        if not nonce.startswith(self.nonce) or iterations < 1:
            raise UpstreamError("the database's SCRAM reply is not valid", "28000")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={nonce}"
        auth = f"{self.first_bare},{text},{final_bare}".encode()
        signature = hmac.new(stored, auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth, hashlib.sha256).digest()
        return f"{final_bare},p={base64.b64encode(proof).decode()}".encode()

    def verify_server(self, server_final: bytes) -> None:
        text = server_final.decode()
        if not text.startswith("v=") or not hmac.compare_digest(
            base64.b64decode(text[2:].split(",")[0]), self.server_signature
        ):
            raise UpstreamError("the database's SCRAM signature does not verify", "28000")


async def simple_query(upstream: Upstream, text: str) -> list[list[str | None]]:
    """Run one query on an idle connection; its rows as text. An error raises
    `UpstreamError` with the database's SQLSTATE."""
    upstream.writer.write(wire.query_message(text))
    await upstream.writer.drain()
    rows: list[list[str | None]] = []
    error: UpstreamError | None = None
    while True:
        kind, body = await _read(upstream.reader)
        if kind == b"D":
            rows.append(
                [
                    None if v is None else v.decode("utf-8", "replace")
                    for v in wire.parse_data_row(body)
                ]
            )
        elif kind == b"E":
            fields = wire.parse_error_fields(body)
            error = UpstreamError(fields.get("M", "query failed"), fields.get("C", "XX000"))
        elif kind == b"Z":
            upstream.status = bytes(body[:1])
            if error is not None:
                raise error
            return rows
