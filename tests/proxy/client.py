"""A minimal protocol-level client for tests that need to see exactly what the proxy
writes (FATAL errors on idle connections, responses to malformed streams)."""

from __future__ import annotations

import socket
import struct
from typing import Any


def startup(params: dict[str, str]) -> bytes:
    body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class RawClient:
    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_message(self) -> tuple[bytes, bytes] | None:
        """The next message, or None when the proxy closed the connection."""
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        length = struct.unpack("!i", self.buf[1:5])[0]
        kind, body = self.buf[:1], self.buf[5 : 1 + length]
        self.buf = self.buf[1 + length :]
        return kind, body

    def login(self, token: str, **params: str) -> list[tuple[bytes, bytes]]:
        self.send(startup({"user": "agent", "database": "test", **params}))
        got = []
        while True:
            m = self.read_message()
            if m is None:
                return got
            got.append(m)
            if m[0] == b"R" and m[1][:4] == struct.pack("!i", 3):
                self.send(msg(b"p", token.encode() + b"\0"))
            if m[0] in (b"Z", b"E"):
                return got

    def until_ready(self) -> list[tuple[bytes, bytes]]:
        got = []
        while True:
            m = self.read_message()
            if m is None:
                return got
            got.append(m)
            if m[0] == b"Z":
                return got

    def close(self) -> None:
        self.sock.close()


def fields(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def error_code(messages: list[tuple[bytes, bytes]]) -> Any:
    for kind, body in messages:
        if kind == b"E":
            return fields(body).get("C")
    return None
