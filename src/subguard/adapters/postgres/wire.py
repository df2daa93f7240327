"""The PostgreSQL frontend/backend protocol (version 3) as bytes: framing, the few
messages the proxy reads (Query, Parse, Bind, Describe, Execute, Close, RowDescription,
DataRow) and the ones it writes itself. Everything else is relayed undecoded.

Every parser raises `ProtocolViolation` on a malformed body: the session that read it
closes its connection, nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import attrs

__all__ = [
    "CANCEL_REQUEST",
    "GSSENC_REQUEST",
    "PROTOCOL_3",
    "SSL_REQUEST",
    "Bind",
    "Field",
    "MessageBuffer",
    "Parse",
    "ProtocolViolation",
    "authentication",
    "backend_key_data",
    "command_complete",
    "data_row",
    "error_response",
    "message",
    "notice_response",
    "parameter_status",
    "parse_bind",
    "parse_close_or_describe",
    "parse_data_row",
    "parse_error_fields",
    "parse_execute",
    "parse_parse",
    "parse_row_description",
    "parse_startup",
    "query",
    "ready_for_query",
    "startup_message",
]

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")
_HEADER = struct.Struct("!ci")


class ProtocolViolation(Exception):
    """A message that breaks the protocol (bad length, truncated body, bad field)."""


# -- framing ------------------------------------------------------------------------------
class MessageBuffer:
    """Bytes received, cut into whole typed messages. `max_message` bounds one message;
    a longer one is a `ProtocolViolation` (the peer chose it, we did not)."""

    __slots__ = ("_buf", "_pos", "max_message")

    def __init__(self, max_message: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_message = max_message

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf) - self._pos

    def messages(self) -> Iterator[tuple[bytes, memoryview, bytes]]:
        """Yield `(type, body, whole message bytes)` for each complete message."""
        buf = self._buf
        while True:
            pos = self._pos
            if len(buf) - pos < 5:
                return
            kind, length = _HEADER.unpack_from(buf, pos)
            if length < 4 or length > self.max_message:
                raise ProtocolViolation(f"message of length {length} out of bounds")
            end = pos + 1 + length
            if end > len(buf):
                return
            self._pos = end
            whole = bytes(buf[pos:end])
            yield kind, memoryview(whole)[5:], whole


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def _cstr(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return data.replace(b"\0", b"") + b"\0"


def startup_message(params: dict[str, str]) -> bytes:
    body = _I32.pack(PROTOCOL_3) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\0"
    return _I32.pack(len(body) + 4) + body


def parse_startup(body: bytes) -> tuple[int, dict[str, str]]:
    """A startup packet's body (after its length): the protocol code and, for a
    StartupMessage, its parameters."""
    if len(body) < 4:
        raise ProtocolViolation("startup packet too short")
    (code,) = _I32.unpack_from(body, 0)
    if code != PROTOCOL_3:
        return code, {}
    parts = bytes(body[4:]).split(b"\0")
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ProtocolViolation("startup parameters are not terminated")
    items = parts[:-2]
    if len(items) % 2:
        raise ProtocolViolation("startup parameters are not name/value pairs")
    try:
        params = {
            items[i].decode("utf-8"): items[i + 1].decode("utf-8") for i in range(0, len(items), 2)
        }
    except UnicodeDecodeError:
        raise ProtocolViolation("startup parameters are not UTF-8") from None
    return code, params


# -- reading message bodies --------------------------------------------------------------
class _Reader:
    __slots__ = ("body", "pos")

    def __init__(self, body: bytes | memoryview) -> None:
        self.body = bytes(body)
        self.pos = 0

    def cstr(self) -> bytes:
        end = self.body.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolViolation("string field not terminated")
        out = self.body[self.pos : end]
        self.pos = end + 1
        return out

    def i16(self) -> int:
        if self.pos + 2 > len(self.body):
            raise ProtocolViolation("message truncated")
        (v,) = _I16.unpack_from(self.body, self.pos)
        self.pos += 2
        return int(v)

    def i32(self) -> int:
        if self.pos + 4 > len(self.body):
            raise ProtocolViolation("message truncated")
        (v,) = _I32.unpack_from(self.body, self.pos)
        self.pos += 4
        return int(v)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.body):
            raise ProtocolViolation("message truncated")
        out = self.body[self.pos : self.pos + n]
        self.pos += n
        return out

    def done(self) -> None:
        if self.pos != len(self.body):
            raise ProtocolViolation("trailing bytes in message")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolation("text is not UTF-8") from None


def query(body: bytes | memoryview) -> str:
    """The text of a Query message."""
    r = _Reader(body)
    text = _text(r.cstr())
    r.done()
    return text


@attrs.frozen
class Parse:
    name: str
    text: str
    param_types: tuple[int, ...]


def parse_parse(body: bytes | memoryview) -> Parse:
    r = _Reader(body)
    name = _text(r.cstr())
    text = _text(r.cstr())
    count = r.i16()
    if count < 0:
        raise ProtocolViolation("negative parameter count")
    types = tuple(r.i32() for _ in range(count))
    r.done()
    return Parse(name, text, types)


@attrs.frozen
class Bind:
    portal: str
    statement: str
    result_formats: tuple[int, ...]


def parse_bind(body: bytes | memoryview) -> Bind:
    """A Bind's portal, statement and result formats (parameter values are skipped,
    never kept)."""
    r = _Reader(body)
    portal = _text(r.cstr())
    statement = _text(r.cstr())
    nfmt = r.i16()
    if nfmt < 0:
        raise ProtocolViolation("negative format count")
    for _ in range(nfmt):
        if r.i16() not in (0, 1):
            raise ProtocolViolation("unknown parameter format")
    nparams = r.i16()
    if nparams < 0:
        raise ProtocolViolation("negative parameter count")
    for _ in range(nparams):
        size = r.i32()
        if size >= 0:
            r.take(size)
        elif size != -1:
            raise ProtocolViolation("bad parameter length")
    nres = r.i16()
    if nres < 0:
        raise ProtocolViolation("negative result format count")
    formats = tuple(r.i16() for _ in range(nres))
    if any(f not in (0, 1) for f in formats):
        raise ProtocolViolation("unknown result format")
    r.done()
    return Bind(portal, statement, formats)


def parse_close_or_describe(body: bytes | memoryview) -> tuple[str, str]:
    """Describe or Close: (`S` or `P`, name)."""
    r = _Reader(body)
    which = r.take(1)
    if which not in (b"S", b"P"):
        raise ProtocolViolation("Describe/Close names neither a statement nor a portal")
    name = _text(r.cstr())
    r.done()
    return which.decode(), name


def parse_execute(body: bytes | memoryview) -> tuple[str, int]:
    r = _Reader(body)
    portal = _text(r.cstr())
    limit = r.i32()
    r.done()
    return portal, limit


@attrs.frozen
class Field:
    """One column of a RowDescription."""

    name: str
    type_oid: int
    format: int


def parse_row_description(body: bytes | memoryview) -> tuple[Field, ...]:
    r = _Reader(body)
    count = r.i16()
    fields = []
    for _ in range(max(count, 0)):
        name = r.cstr().decode("utf-8", "replace")
        r.i32()  # table oid
        r.i16()  # column number
        oid = r.i32()
        r.i16()  # type size
        r.i32()  # type modifier
        fmt = r.i16()
        fields.append(Field(name, oid & 0xFFFFFFFF, fmt))
    r.done()
    return tuple(fields)


def parse_data_row(body: bytes | memoryview) -> list[bytes | None]:
    r = _Reader(body)
    count = r.i16()
    values: list[bytes | None] = []
    for _ in range(max(count, 0)):
        size = r.i32()
        values.append(None if size < 0 else r.take(size))
    r.done()
    return values


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [_I16.pack(len(values))]
    for v in values:
        if v is None:
            parts.append(_I32.pack(-1))
        else:
            parts.append(_I32.pack(len(v)))
            parts.append(v)
    return message(b"D", b"".join(parts))


def parse_error_fields(body: bytes | memoryview) -> dict[str, str]:
    """An ErrorResponse's or NoticeResponse's fields by their one-letter code."""
    out: dict[str, str] = {}
    data = bytes(body)
    pos = 0
    while pos < len(data) and data[pos] != 0:
        code = chr(data[pos])
        end = data.find(b"\0", pos + 1)
        if end < 0:
            raise ProtocolViolation("error field not terminated")
        out[code] = data[pos + 1 : end].decode("utf-8", "replace")
        pos = end + 1
    return out


# -- messages the proxy writes ------------------------------------------------------------
def _fields(severity: str, code: str, text: str, detail: str | None, hint: str | None) -> bytes:
    parts = [b"S" + _cstr(severity), b"V" + _cstr(severity), b"C" + _cstr(code), b"M" + _cstr(text)]
    if detail:
        parts.append(b"D" + _cstr(detail))
    if hint:
        parts.append(b"H" + _cstr(hint))
    return b"".join(parts) + b"\0"


def error_response(
    code: str,
    text: str,
    *,
    severity: str = "ERROR",
    detail: str | None = None,
    hint: str | None = None,
) -> bytes:
    return message(b"E", _fields(severity, code, text, detail, hint))


def notice_response(
    code: str, text: str, *, detail: str | None = None, hint: str | None = None
) -> bytes:
    return message(b"N", _fields("NOTICE", code, text, detail, hint))


def ready_for_query(status: bytes) -> bytes:
    return message(b"Z", status)


def authentication(code: int, extra: bytes = b"") -> bytes:
    return message(b"R", _I32.pack(code) + extra)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", _cstr(name) + _cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return message(b"K", _I32.pack(pid) + _I32.pack(secret))


def command_complete(tag: str) -> bytes:
    return message(b"C", _cstr(tag))


def query_message(text: str) -> bytes:
    return message(b"Q", _cstr(text))


def cancel_request(pid: int, secret: int) -> bytes:
    return _I32.pack(16) + _I32.pack(CANCEL_REQUEST) + _I32.pack(pid) + _I32.pack(secret)


def i32(data: bytes | memoryview, offset: int = 0) -> int:
    if len(data) < offset + 4:
        raise ProtocolViolation("message truncated")
    return int(_I32.unpack_from(data, offset)[0])
