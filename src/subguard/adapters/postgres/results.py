"""What the database sends back, matched to what the proxy forwarded: a queue of the
responses still owed (one entry per forwarded message that answers), so each
RowDescription, DataRow and ErrorResponse is read against the statement it belongs to.
Masked results are rewritten here, DataRow by DataRow, keeping each wire type valid:
text-like columns get the strategy's text, any other column NULL.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from subguard.adapters._masking import MaskPlan
from subguard.adapters.postgres import wire

__all__ = ["TEXT_OIDS", "Completed", "Masker", "Owed", "Prepared", "ResultTracker", "parse_tag"]

logger = logging.getLogger("subguard.proxy")

#: text, varchar, bpchar, name, char: their binary form is their text.
TEXT_OIDS = frozenset({25, 1043, 1042, 19, 18})

#: PostgreSQL encoding names → Python codecs (for masking text-like values).
_ENCODINGS = {"UTF8": "utf-8", "SQL_ASCII": "latin-1", "LATIN1": "latin-1", "WIN1252": "cp1252"}


@attrs.define
class Prepared:
    """A statement the gate let through: its text, decision, mask plan, and the columns
    the database described for it (type oids; formats come from each Bind)."""

    text: str
    decision: Any
    plan: MaskPlan | None
    masked: bool  # the decision carries masks: rows must be placed or refused
    ddl: bool = False
    policy: int = 0
    fields: tuple[wire.Field, ...] | None = None
    #: reads a tagged column anywhere (or is masked): the database's error texts, which
    #: may quote values, are withheld
    sensitive: bool = False


@attrs.define
class Portal:
    statement: Prepared
    formats: tuple[int, ...]
    fields: tuple[wire.Field, ...] | None = None


@attrs.define
class Owed:
    """One response the database owes. `kind`: `Q` (a simple query, until
    ReadyForQuery), `P`, `B`, `DS`, `DP`, `E`, `C`, `S`. `swallow`: the proxy sent it
    for itself; the client never sees its answer."""

    kind: str
    target: Any = None  # Prepared (Q, P, DS), Portal (B, DP, E)
    swallow: bool = False
    started: bool = False  # an Execute whose rows have begun
    #: when the statement (a simple query's next one) began: `time.perf_counter()`
    since: float = 0.0
    #: statements of a simple query completed so far; rows an Execute returned so far
    done: int = 0
    rows: int = 0


#: `(statement the decision let through, its index in the text, outcome, command word,
#: rows, milliseconds, SQLSTATE)`: what the database did with one statement.
Completed = Callable[[Prepared, int, str, str | None, int | None, float, str | None], None]

#: Completion tags whose last word counts rows (`INSERT 0 5` → 5).
_ROW_TAGS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY"})


def parse_tag(tag: bytes | memoryview) -> tuple[str | None, int | None]:
    """A CommandComplete tag's command words and row count: `UPDATE 2` → (`UPDATE`, 2),
    `CREATE TABLE` → (`CREATE TABLE`, None). Only upper-case words and a number are
    read; anything else in a tag is dropped."""
    words = bytes(tag).rstrip(b"\0").decode("ascii", "replace").split()
    command = []
    for word in words:
        if not (word.isascii() and word.isalpha() and word.isupper()):
            break
        command.append(word)
    name = " ".join(command[:4]) or None
    rows = None
    if name in _ROW_TAGS and len(words) > len(command) and words[-1].isdigit():
        rows = int(words[-1])
    return name, rows


class Masker:
    """Rewrites the masked positions of DataRows for one result."""

    def __init__(
        self, plan: MaskPlan, fields: Sequence[wire.Field], formats: Sequence[int], encoding: str
    ) -> None:
        self.codec = _ENCODINGS.get(encoding.upper().replace("-", ""))
        if self.codec is None:
            try:
                self.codec = codecs.lookup(encoding).name
            except LookupError:
                self.codec = None
        self.positions: list[tuple[int, Callable[[Any], Any], bool]] = []
        for i, (mask, field) in enumerate(zip(plan.masks, fields)):
            if mask is None:
                continue
            fmt = formats[0] if len(formats) == 1 else (formats[i] if i < len(formats) else 0)
            textlike = field.type_oid in TEXT_OIDS and (fmt in (0, 1)) and self.codec is not None
            self.positions.append((i, mask, textlike))
        self.width = len(plan.masks)

    def row(self, body: bytes | memoryview) -> bytes:
        values = wire.parse_data_row(body)
        if len(values) != self.width:
            raise wire.ProtocolViolation("a row does not have the described number of columns")
        for i, mask, textlike in self.positions:
            raw = values[i]
            if raw is None:
                continue
            if textlike:
                assert self.codec is not None
                out = mask(raw.decode(self.codec, "surrogateescape"))
                values[i] = None if out is None else str(out).encode(self.codec, "surrogateescape")
            else:
                values[i] = None
        return wire.data_row(values)


class ResultTracker:
    """The queue of owed responses, the transaction status, and the current result's
    masking state. Used only from the event loop."""

    def __init__(self) -> None:
        self.owed: collections.deque[Owed] = collections.deque()
        self.status = b"I"
        self.encoding = "UTF8"
        self._idle_waiters: list[asyncio.Future[None]] = []
        # the result being relayed
        self.masker: Masker | None = None
        self.refusing: str | None = None  # why the current result's rows are withheld
        #: told of every statement the database ran for the client (never raises into
        #: the relay: a failure to report is logged and forgotten)
        self.on_complete: Completed | None = None

    def push(self, owed: Owed) -> None:
        owed.since = time.perf_counter()
        self.owed.append(owed)

    def complete(
        self,
        owed: Owed | None,
        outcome: str,
        *,
        tag: bytes | memoryview | None = None,
        rows: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        """Report what became of the statement `owed` ran (a simple query's next one)."""
        callback = self.on_complete
        if callback is None or owed is None or owed.swallow:
            return
        target = owed.target
        prepared = target.statement if isinstance(target, Portal) else target
        if not isinstance(prepared, Prepared):
            return
        now = time.perf_counter()
        ms = (now - owed.since) * 1000.0
        index = owed.done if owed.kind == "Q" else 0
        owed.done += 1
        owed.since = now
        command = None
        if tag is not None:
            command, rows = parse_tag(tag)
        try:
            callback(prepared, index, outcome, command, rows, ms, sqlstate)
        except Exception:
            logger.exception("a statement's completion could not be reported")

    @property
    def idle(self) -> bool:
        return not self.owed

    @property
    def needs_sync(self) -> bool:
        """Forwarded extended messages wait for a Sync the client has not sent yet."""
        return bool(self.owed) and self.owed[-1].kind not in ("S", "Q")

    async def wait_idle(self) -> None:
        if not self.owed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        await fut

    def _check_idle(self) -> None:
        if not self.owed and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def fail_waiters(self, exc: BaseException) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(exc)

    # -- what one upstream message means -------------------------------------------------
    def start_result(
        self, target: Prepared | Portal | None, fields: tuple[wire.Field, ...] | None
    ) -> None:
        """Rows are about to come for `target` (a simple query's statement or a portal)."""
        self.masker = None
        self.refusing = None
        if target is None:
            return
        prepared = target.statement if isinstance(target, Portal) else target
        formats = target.formats if isinstance(target, Portal) else ()
        if not prepared.masked:
            return
        plan = prepared.plan
        if plan is None:
            self.refusing = "the statement returned rows the analysis did not expect"
            return
        if not plan.active:
            return
        if fields is None:
            self.refusing = "the result's columns are not known"
            return
        if not plan.matches([f.name for f in fields]):
            self.refusing = "the result's columns do not match the analysis"
            return
        self.masker = Masker(plan, fields, formats, self.encoding)

    def end_result(self) -> None:
        self.masker = None
        self.refusing = None

    def pop(self) -> Owed | None:
        owed = self.owed.popleft() if self.owed else None
        self._check_idle()
        return owed

    def pop_until_sync(self) -> list[Owed]:
        """After an ErrorResponse to extended messages: the database skips to the Sync."""
        dropped = []
        while self.owed and self.owed[0].kind not in ("S", "Q"):
            dropped.append(self.owed.popleft())
        return dropped


def translate(
    tracker: ResultTracker, kind: bytes, body: memoryview, whole: bytes
) -> tuple[bytes | None, tuple[str, str] | None]:
    """What the client receives for one upstream message (None: nothing), and, when the
    session must end instead, the FATAL error's (SQLSTATE, message)."""
    head = tracker.owed[0] if tracker.owed else None
    swallow = head is not None and head.swallow
    if kind == b"D":
        if head is not None and head.kind == "E":
            head.rows += 1
        if tracker.refusing:
            return None, None
        if tracker.masker is None and head is not None and head.kind == "E" and not head.started:
            portal = head.target
            tracker.start_result(portal, portal.fields or portal.statement.fields)
            head.started = True
            if tracker.refusing:
                return None, None
        if tracker.masker is not None:
            return tracker.masker.row(body), None
        return None if swallow else whole, None
    if kind == b"T":
        if head is not None and head.kind in ("DS", "DP"):
            target = head.target
            prepared = target.statement if isinstance(target, Portal) else target
            if prepared.masked:  # the columns matter only where masks are placed
                target.fields = wire.parse_row_description(body)
            tracker.pop()
        elif head is not None and head.kind == "Q":
            masked = head.target is not None and head.target.masked
            tracker.start_result(head.target, wire.parse_row_description(body) if masked else None)
            if tracker.refusing:
                return None, None
        return None if swallow else whole, None
    if kind in (b"C", b"I", b"s"):
        refusing = tracker.refusing
        tracker.end_result()
        if head is not None and head.kind in ("Q", "E"):
            if refusing:
                tracker.complete(head, "error", tag=body if kind == b"C" else None, sqlstate="42501")
            elif kind == b"C":
                tracker.complete(head, "complete", tag=body)
            elif kind == b"I":
                tracker.complete(head, "empty")
            else:
                tracker.complete(head, "suspended", rows=head.rows)
            if head.kind == "E":
                tracker.pop()
        if refusing:
            return wire.error_response(
                "42501", f"refused: {refusing}; masked columns are never returned unmasked"
            ), None
        return None if swallow else whole, None
    if kind == b"Z":
        tracker.status = bytes(body[:1])
        tracker.end_result()
        owed = tracker.pop()
        return None if owed is not None and owed.swallow else whole, None
    if kind == b"E":
        tracker.end_result()
        out = whole
        if head is not None and head.kind in ("Q", "E", "P", "B") and tracker.on_complete is not None:
            # the SQLSTATE only: the message can quote the statement's values
            tracker.complete(head, "error", sqlstate=_sqlstate(body))
        if head is not None and head.kind in ("Q", "E"):
            target = head.target
            prepared = target.statement if isinstance(target, Portal) else target
            if isinstance(prepared, Prepared) and prepared.sensitive:
                out = _withheld_error(body)
        if head is not None and head.kind != "Q":
            tracker.pop()
            tracker.pop_until_sync()
        return None if swallow else out, None
    if kind in (b"1", b"2", b"3", b"n"):
        if head is not None and head.kind in ("P", "B", "C", "DS", "DP"):
            tracker.pop()
        return None if swallow else whole, None
    if kind == b"t":
        return (
            None if swallow else whole,
            None,
        )  # ParameterDescription, before the RowDescription or NoData
    if kind == b"S":
        name, _, rest = bytes(body).partition(b"\0")
        if name == b"client_encoding":
            tracker.encoding = rest.rstrip(b"\0").decode("ascii", "replace")
            if not safe_encoding(tracker.encoding):
                # the text the analysis reads must be the text the server runs
                return None, (
                    "22023",
                    f"client_encoding `{tracker.encoding}` is not accepted by the proxy (use UTF8)",
                )
        return whole, None
    if kind in (b"H", b"d", b"c"):
        target = head.target if head is not None else None
        prepared = target.statement if isinstance(target, Portal) else target
        if isinstance(prepared, Prepared) and prepared.masked:
            # rows in a form the proxy cannot rewrite under a mask: end the session
            # rather than let one byte through
            return None, ("42501", "COPY output under a mask is never sent")
        return whole, None
    if kind == b"N" and head is not None and head.kind in ("Q", "E"):
        target = head.target
        prepared = target.statement if isinstance(target, Portal) else target
        if isinstance(prepared, Prepared) and prepared.sensitive:
            return None, None  # a notice raised while tagged values are read may quote them
    return whole, None  # NoticeResponse, NotificationResponse, CopyIn/Both, others: as is


def safe_encoding(name: str) -> bool:
    """Encodings in which the proxy reads the client's bytes as the server does. In
    others (SJIS, BIG5, GBK, …) a byte that is a quote or backslash in UTF-8 can be
    the second half of a character, so the analysis and the server would read
    different statements."""
    return name.upper().replace("-", "").replace("_", "") in ("UTF8", "UNICODE", "SQLASCII")


def _sqlstate(body: memoryview) -> str:
    """An ErrorResponse's SQLSTATE (`XX000` when it has none readable)."""
    try:
        return wire.parse_error_fields(body).get("C") or "XX000"
    except wire.ProtocolViolation:
        return "XX000"


def _withheld_error(body: memoryview) -> bytes:
    """The database's error for a statement that reads tagged columns, its text withheld:
    messages such as `invalid input syntax for type integer: "…"` quote the very values
    a mask hides (a cast in a WHERE clause would read them out). The SQLSTATE and
    severity stay."""
    fields = wire.parse_error_fields(body)
    code = fields.get("C", "XX000")
    return wire.error_response(
        code,
        f"the statement failed (SQLSTATE {code}); the database's message is withheld because the result is masked",
        severity=fields.get("V") or fields.get("S") or "ERROR",
    )
