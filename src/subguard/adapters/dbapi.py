"""The DB-API 2.0 (PEP 249) adapter: a guarded connection that behaves as the one it
wraps, with every statement decided by the gate before anything reaches the driver.

    from subguard.adapters import dbapi
    conn = dbapi.guard(raw_connection, engine, subject="ci-bot", resource=resource, session="job-1")

The wrapper is cooperative: code that holds the raw connection can bypass it. Within its
own surface nothing bypasses the gate: every cursor (whatever its factory, server-side
ones included), the connection's `execute` shortcuts, `executemany`, `executescript`,
psycopg's `stream` and `copy`; the raw handles that would read data around it (SQLite's
`iterdump`, `backup`, `blobopen`, `serialize`; psycopg's `pgconn`) are not exposed.

The connection and cursor wrappers stay in one module, beside the lists of the driver
attributes they pass through: split, what is exposed would live apart from the code that
refuses everything else. The schema they judge against is read in `_schema`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from subguard.adapters._errors import ApprovalRequired, Denied, Refused, Terminated, describe
from subguard.adapters._estimate import Estimator
from subguard.adapters._gate import Gate, as_resource
from subguard.adapters._masking import (
    MaskPlan,
    Unplaceable,
    tagged_columns,
    tagged_in_output,
    unjudged_column,
)
from subguard.adapters._placeholders import for_analysis
from subguard.adapters._schema import introspect, tag_given
from subguard.engine import Decision, Engine, Resource, SqlRequest, Subject
from subguard.sql import output_lineage

__all__ = ["GuardedConnection", "GuardedCursor", "guard", "introspect"]

#: Statement kinds after which the introspected schema is read again.
_DDL = frozenset({"create", "alter", "drop"})

_DIALECT_BY_MODULE = {"sqlite3": "sqlite", "psycopg": "postgres", "psycopg2": "postgres"}
_KIND_BY_DIALECT = {"sqlite": "sqlite", "postgres": "postgres"}
_SQL_KINDS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
}

#: Connection attributes passed through to the driver; anything else is not exposed.
_CONNECTION_ATTRS = frozenset(
    {
        # PEP 249 and common
        "Error",
        "Warning",
        "InterfaceError",
        "DatabaseError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
        "autocommit",
        "closed",
        "broken",
        # sqlite3
        "row_factory",
        "text_factory",
        "isolation_level",
        "in_transaction",
        "total_changes",
        "set_progress_handler",
        "set_trace_callback",
        "interrupt",
        "getlimit",
        "setlimit",
        # psycopg
        "info",
        "transaction",
        "read_only",
        "deferrable",
        "prepare_threshold",
        "prepared_max",
        "add_notice_handler",
        "remove_notice_handler",
        "add_notify_handler",
        "remove_notify_handler",
        "cancel",
        "cancel_safe",
        "notifies",
        "set_autocommit",
        "set_isolation_level",
        "set_read_only",
        "set_deferrable",
        "client_encoding",
        "tpc_begin",
        "tpc_prepare",
        "tpc_commit",
        "tpc_rollback",
        "tpc_recover",
        "xid",
    }
)
_CURSOR_ATTRS = frozenset(
    {
        "description",
        "rowcount",
        "lastrowid",
        "arraysize",
        "setinputsizes",
        "setoutputsize",
        "row_factory",
        "closed",
        "rownumber",
        "statusmessage",
        "pgresult_fields",
        "format",
        "name",
        "scrollable",
        "withhold",
        "itersize",
        "scroll",
        "nextset",
    }
)


class _Driver:
    """A driver module's exception classes, and subclasses of ours mixed into them."""

    _lock = threading.Lock()
    _cache: ClassVar[dict[tuple[type[Refused], type[BaseException]], type[Refused]]] = {}

    def __init__(self, module: Any) -> None:
        self.module = module
        self.name = getattr(module, "__name__", "")
        self.database_error: type[BaseException] | None = getattr(module, "DatabaseError", None)
        self.paramstyle = str(getattr(module, "paramstyle", "qmark"))

    def error(self, exc: Refused) -> Refused:
        """`exc` re-made as an instance of the driver's `DatabaseError` too."""
        base = self.database_error
        if base is None or isinstance(exc, base):
            return exc
        cls = type(exc)
        key = (cls, base)
        with self._lock:
            mixed = self._cache.get(key)
            if mixed is None:
                mixed = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
                mixed.__qualname__ = cls.__qualname__
                self._cache[key] = mixed
        if isinstance(exc, ApprovalRequired):
            made: Refused = mixed(exc.message, exc.decision, exc.approval_id)  # type: ignore[call-arg]
        else:
            made = mixed(exc.message, exc.decision)
        return made


def _driver_module(raw: Any) -> Any:
    name = type(raw).__module__.split(".")[0]
    return importlib.import_module(name)


@attrs.frozen
class _Prepared:
    """A statement the gate let through: its decision and where its masks fall."""

    decision: Decision
    plan: MaskPlan | None
    ddl: bool


class GuardedConnection:
    """A PEP 249 connection whose statements pass the gate first."""

    def __init__(
        self,
        raw: Any,
        gate: Gate,
        *,
        driver: _Driver,
        dialect: str,
        tags: Mapping[str, Sequence[str]],
        introspected: bool,
        estimate_bound: int = 100_000,
    ) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_gate", gate)
        object.__setattr__(self, "_driver", driver)
        object.__setattr__(self, "_dialect", dialect)
        object.__setattr__(self, "_tags", dict(tags))
        object.__setattr__(self, "_introspected", introspected)
        object.__setattr__(self, "_numeric", driver.paramstyle not in ("format", "pyformat"))
        object.__setattr__(self, "_close_lock", threading.Lock())
        object.__setattr__(self, "_raw_closed", False)
        object.__setattr__(self, "_owner", threading.get_ident())
        object.__setattr__(self, "_functions", set())
        functions = self._functions
        object.__setattr__(
            self,
            "_estimator",
            Estimator(raw, dialect, bound=estimate_bound, registered=lambda: bool(functions)),
        )
        object.__setattr__(self, "_tagged", tagged_columns(gate.resource.schema))
        #: analysed text → the tagged columns its result carries (cleared with the schema)
        object.__setattr__(self, "_carried", {})
        #: analysed text → its request (frozen, so one serves every execute of the text)
        object.__setattr__(self, "_requests", {})
        for name in (*_FACTORIES, "cursor_factory", "server_cursor_factory"):
            current = getattr(raw, name, None)
            if current is not None:
                _check_factory(name, current)
        # The gate holds the connection weakly: a dropped connection frees its gate, and a
        # gate nobody holds stops being followed.
        closer = weakref.WeakMethod(self._on_gate_closed)
        gate.on_close(lambda error: _call_if_alive(closer, error))

    # -- the gate ----------------------------------------------------------------------
    @property
    def gate(self) -> Gate:
        gate: Gate = self._gate
        return gate

    @property
    def resource(self) -> Resource:
        return self.gate.resource

    def _raise(self, exc: Refused) -> None:
        raise self._driver.error(exc) from None

    def _ensure_open(self) -> None:
        try:
            self._gate.ensure_open()
        except Terminated as exc:
            self._close_raw()
            self._raise(exc)

    def _on_gate_closed(self, _error: Terminated) -> None:
        interrupt = getattr(self._raw, "interrupt", None) or getattr(self._raw, "cancel", None)
        if interrupt is not None and threading.get_ident() != self._owner:
            with contextlib.suppress(Exception):
                interrupt()
        self._close_raw()

    def _close_raw(self) -> None:
        with self._close_lock:
            if self._raw_closed:
                return
            try:
                self._raw.close()
            except Exception:
                # SQLite connections close only in their own thread: the gate is closed
                # already (nothing more runs); the owner's next call closes it.
                return
            object.__setattr__(self, "_raw_closed", True)

    def _prepare(
        self, operation: Any, *, rows: bool = True, parameters: Any = None, many: bool = False
    ) -> tuple[str, _Prepared]:
        """Decide a statement; returns the driver's text and what the gate decided.
        With a rule reading `estimated_rows`, a write is first estimated with its
        `parameters` (every set of them when `many`)."""
        self._ensure_open()
        text = _sql_text(operation, self._raw)
        analysed = for_analysis(text, numeric=self._numeric)
        resource = self._gate.resource
        estimate = None
        if self._gate.wants_estimate:
            estimate = self._estimator.rows(text, parameters, schema=resource.schema, many=many)
        try:
            decision = self._gate.decide(self._request(analysed, estimate))
        except Refused as exc:
            if isinstance(exc, Terminated):
                self._close_raw()
            self._raise(exc)
            raise  # unreachable
        plan: MaskPlan | None = None
        sql = decision.input.get("sql") or {}
        if rows:
            lineage = functools.partial(output_lineage, analysed, self._dialect, resource.schema)
            try:
                plan = self._gate.mask_plan(decision, lineage)
            except Denied as exc:
                self._raise(exc)
            if self._tagged:
                # The policy decided on the analysis' facts; if a tagged column reaches the
                # result by a path those facts missed (`to_json(u.*)`, a whole-row `u`),
                # no mask rule could have seen it: refuse rather than return it unjudged.
                carried = self._carried.get(analysed)
                if carried is None:
                    carried = tagged_in_output(lineage(), self._tagged)
                    if len(self._carried) >= 1024:
                        self._carried.clear()
                    self._carried[analysed] = carried
                missed = unjudged_column(carried, sql.get("columns_read") or ())
                if missed is not None:
                    self._raise(
                        Denied(
                            f"refused: tagged column `{missed}` reaches the result but not the "
                            f"facts the policy decided on: {describe(decision)}",
                            decision,
                        )
                    )
        if (
            self._functions
            and self._functions & set(sql.get("functions") or ())
            and any(c.get("tags") for c in sql.get("columns_read") or ())
        ):
            self._raise(
                Denied(
                    "refused: a function registered in this process would see tagged "
                    f"column values before any mask [decision {decision.id}]",
                    decision,
                )
            )
        statements = sql.get("statements") or ()
        ddl = any(s.get("kind") in _DDL for s in statements)
        return text, _Prepared(decision, plan, ddl)

    def _request(self, analysed: str, estimate: int | None) -> SqlRequest:
        """The request for a text: built once per text when no estimate goes with it (a
        repeated statement's shape), else anew."""
        if estimate is not None:
            return SqlRequest(analysed, self._dialect, estimated_rows=estimate)
        requests: dict[str, SqlRequest] = self._requests
        request = requests.get(analysed)
        if request is None:
            request = SqlRequest(analysed, self._dialect)
            if len(requests) >= 1024:
                requests.clear()
            requests[analysed] = request
        return request

    def _after(self, prepared: _Prepared) -> None:
        if prepared.ddl and self._introspected:
            self._refresh_schema()

    def _refresh_schema(self) -> None:
        schema = introspect(self._raw, self._dialect, self._tags)
        self._gate.resource = attrs.evolve(self._gate.resource, schema=schema)
        object.__setattr__(self, "_tagged", tagged_columns(schema))
        object.__setattr__(self, "_carried", {})

    # -- PEP 249 -----------------------------------------------------------------------
    def cursor(self, *args: Any, **kwargs: Any) -> GuardedCursor:
        self._ensure_open()
        for name in ("factory", "row_factory", "cursor_factory"):
            if kwargs.get(name) is not None:
                _check_factory(name, kwargs[name])
        if args and not isinstance(args[0], str):
            _check_factory("factory", args[0])  # sqlite3's positional factory
        return GuardedCursor(self, self._raw.cursor(*args, **kwargs))

    def execute(self, operation: Any, parameters: Any = None, **kwargs: Any) -> GuardedCursor:
        """The connection shortcut (sqlite3, psycopg): a new guarded cursor's execute."""
        return self.cursor().execute(operation, parameters, **kwargs)

    def executemany(self, operation: Any, seq_of_parameters: Any, **kwargs: Any) -> GuardedCursor:
        return self.cursor().executemany(operation, seq_of_parameters, **kwargs)

    def executescript(self, script: str) -> GuardedCursor:
        return self.cursor().executescript(script)

    def commit(self) -> None:
        self._ensure_open()
        self._raw.commit()

    def rollback(self) -> None:
        self._ensure_open()
        self._raw.rollback()

    def close(self) -> None:
        """Close the connection and its gate."""
        self._gate.close("the connection was closed by its holder")
        self._close_raw()

    @property
    def closed(self) -> bool:
        return self.gate.closed

    def __enter__(self) -> GuardedConnection:
        self._ensure_open()
        self._raw.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        if self._raw_closed:
            return None
        result = self._raw.__exit__(*exc)
        if getattr(self._raw, "closed", False):  # psycopg closes on exit
            self._gate.close("the connection was closed by its holder")
        return result

    def __getattr__(self, name: str) -> Any:
        if name in _CONNECTION_ATTRS:
            return getattr(self._raw, name)
        raise AttributeError(f"a guarded connection does not expose `{name}`")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FACTORIES:
            _check_factory(name, value)
        if name in _CONNECTION_ATTRS:
            setattr(self._raw, name, value)
            return
        raise AttributeError(f"a guarded connection does not expose `{name}`")

    # -- functions the database calls back into ---------------------------------------
    def create_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """sqlite3's `create_function`. A function registered here sees the values it is
        called with before any mask: a statement that calls one while reading a tagged
        column is refused."""
        self._ensure_open()
        self._functions.add(name.lower())
        return self._raw.create_function(name, *args, **kwargs)

    def create_aggregate(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._ensure_open()
        self._functions.add(name.lower())
        return self._raw.create_aggregate(name, *args, **kwargs)

    def create_window_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._ensure_open()
        self._functions.add(name.lower())
        return self._raw.create_window_function(name, *args, **kwargs)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<GuardedConnection {state} session={self._gate.session!r} over {type(self._raw).__name__}>"


_set = object.__setattr__


class GuardedCursor:
    """A PEP 249 cursor whose statements pass the gate, and whose rows come back masked
    where the decision says."""

    __slots__ = ("_conn", "_plan", "_raw")

    _conn: GuardedConnection
    _raw: Any
    _plan: MaskPlan | None

    def __init__(self, connection: GuardedConnection, raw: Any) -> None:
        _set(self, "_conn", connection)
        _set(self, "_raw", raw)
        _set(self, "_plan", None)

    @property
    def connection(self) -> GuardedConnection:
        return self._conn

    def _start(
        self, operation: Any, *, rows: bool = True, parameters: Any = None, many: bool = False
    ) -> tuple[str, _Prepared]:
        text, prepared = self._conn._prepare(operation, rows=rows, parameters=parameters, many=many)
        _set(self, "_plan", None)
        return text, prepared

    def _checked_plan(self, prepared: _Prepared) -> None:
        """After running: the result must have the columns the analysis placed masks on."""
        plan = prepared.plan
        description = self._raw.description
        if plan is None or not plan.active:
            if prepared.decision.masks and description is not None and plan is None:
                self._refuse_result(
                    prepared.decision, "the statement returned rows the analysis did not expect"
                )
            _set(self, "_plan", plan)
            return
        if description is None:
            return
        if not plan.matches([d[0] for d in description]):
            self._refuse_result(prepared.decision, "the result's columns do not match the analysis")
        _set(self, "_plan", plan)

    def _refuse_result(self, decision: Decision, why: str) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        self._conn._raise(
            Denied(
                f"refused: {why}; masked columns are never returned unmasked: {describe(decision)}",
                decision,
            )
        )

    def execute(self, operation: Any, parameters: Any = None, **kwargs: Any) -> GuardedCursor:
        text, prepared = self._start(operation, parameters=parameters)
        if parameters is None:
            self._raw.execute(operation if not isinstance(operation, str) else text, **kwargs)
        else:
            self._raw.execute(
                operation if not isinstance(operation, str) else text, parameters, **kwargs
            )
        self._checked_plan(prepared)
        self._conn._after(prepared)
        return self

    def executemany(self, operation: Any, seq_of_parameters: Any, **kwargs: Any) -> GuardedCursor:
        """Decided once for every parameter set (the text is the same; values never
        reach the analysis). A write is estimated over every set, so the sets are read
        once, here, and handed on as a list."""
        if self._conn.gate.wants_estimate and not isinstance(seq_of_parameters, list | tuple):
            seq_of_parameters = list(seq_of_parameters)
        text, prepared = self._start(operation, parameters=seq_of_parameters, many=True)
        self._raw.executemany(
            operation if not isinstance(operation, str) else text, seq_of_parameters, **kwargs
        )
        self._checked_plan(prepared)
        self._conn._after(prepared)
        return self

    def executescript(self, script: str) -> GuardedCursor:
        """sqlite3's script: every statement in it decided together; returns no rows."""
        _text, prepared = self._start(script, rows=False)
        self._raw.executescript(script)
        self._conn._after(prepared)
        return self

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        """psycopg's row-by-row results, masked like `fetch*`."""
        text, prepared = self._start(query)
        if prepared.plan is not None and prepared.plan.active:
            plan = prepared.plan
            for row in self._raw.stream(
                query if not isinstance(query, str) else text, params, **kwargs
            ):
                yield _mask_row(plan, row, self._conn, prepared.decision)
        else:
            if prepared.decision.masks:
                self._conn._raise(
                    Denied(
                        f"refused: rows under a mask cannot be streamed unchecked [decision {prepared.decision.id}]",
                        prepared.decision,
                    )
                )
            yield from self._raw.stream(
                query if not isinstance(query, str) else text, params, **kwargs
            )

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        """psycopg's COPY: decided like any statement; refused under a mask (its data
        is not rows the gate can rewrite)."""
        text, prepared = self._start(statement, rows=False)
        if prepared.decision.masks:
            self._conn._raise(
                Denied(
                    f"refused: COPY cannot be masked [decision {prepared.decision.id}]",
                    prepared.decision,
                )
            )
        return self._raw.copy(
            statement if not isinstance(statement, str) else text, params, **kwargs
        )

    # -- results -----------------------------------------------------------------------
    def _mask(self, row: Any) -> Any:
        plan = self._plan
        if plan is None or row is None:
            return row
        return _mask_row(plan, row, self._conn, None)

    def fetchone(self) -> Any:
        self._conn._ensure_open()
        return self._mask(self._raw.fetchone())

    def fetchmany(self, size: int | None = None) -> list[Any]:
        self._conn._ensure_open()
        rows = self._raw.fetchmany() if size is None else self._raw.fetchmany(size)
        return [self._mask(r) for r in rows] if self._plan is not None else list(rows)

    def fetchall(self) -> list[Any]:
        self._conn._ensure_open()
        rows = self._raw.fetchall()
        return [self._mask(r) for r in rows] if self._plan is not None else list(rows)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> GuardedCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name in _CURSOR_ATTRS:
            return getattr(self._raw, name)
        raise AttributeError(f"a guarded cursor does not expose `{name}`")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("arraysize", "row_factory", "itersize"):
            setattr(self._raw, name, value)
        else:
            raise AttributeError(f"a guarded cursor does not expose `{name}`")


def _call_if_alive(method: weakref.WeakMethod[Any], error: Terminated) -> None:
    bound = method()
    if bound is not None:
        bound(error)


_FACTORIES = ("row_factory", "text_factory")

#: The cursor methods the wrapper calls: a cursor class that overrides one of them would
#: see rows before they are masked.
_CURSOR_METHODS = (
    "execute",
    "executemany",
    "executescript",
    "fetchone",
    "fetchmany",
    "fetchall",
    "__next__",
    "__iter__",
    "stream",
)


def _known_row_factories() -> set[Any]:
    known: set[Any] = {None, tuple}
    try:
        import sqlite3

        known.add(sqlite3.Row)
    except ImportError:  # pragma: no cover - sqlite3 is in the standard library
        pass
    try:
        from psycopg import rows

        known.update({rows.tuple_row, rows.dict_row, rows.namedtuple_row})
    except ImportError:
        pass
    return known


def _check_factory(name: str, value: Any) -> None:
    """Refuse callables that would see values before the gate masks them: a row or text
    factory other than the drivers' own, a cursor class overriding what the wrapper calls."""
    if name == "text_factory":
        if value not in (str, bytes, bytearray):
            raise TypeError(
                "a guarded connection accepts only str, bytes or bytearray as text_factory"
            )
        return
    if name == "row_factory":
        if value not in _known_row_factories():
            raise TypeError("a guarded connection accepts only the driver's own row factories")
        return
    if not isinstance(value, type):
        raise TypeError(f"a guarded connection accepts only cursor classes as `{name}`")
    for method in _CURSOR_METHODS:
        own = getattr(value, method, None)
        base = next(
            (
                getattr(b, method)
                for b in value.__mro__
                if b.__module__ in ("sqlite3", "psycopg.cursor", "psycopg.server_cursor", "psycopg")
                and hasattr(b, method)
            ),
            None,
        )
        if own is not None and base is not None and own is not base:
            raise TypeError(
                f"cursor class `{value.__name__}` overrides `{method}`: it would see rows before they are masked"
            )


def _mask_row(plan: MaskPlan, row: Any, conn: GuardedConnection, decision: Decision | None) -> Any:
    try:
        if isinstance(row, tuple) and type(row) is not tuple and hasattr(row, "_make"):
            return type(row)._make(plan.apply(tuple(row)))  # a named tuple
        if isinstance(row, (tuple, list)):
            masked = plan.apply(tuple(row))
            return list(masked) if isinstance(row, list) else masked
        if isinstance(row, dict):
            return dict(zip(row.keys(), plan.apply(tuple(row.values()))))
        if type(row).__name__ == "Row" and type(row).__module__ == "sqlite3":
            return plan.apply(tuple(row))
    except Unplaceable as exc:
        conn._raise(Denied(f"refused: {exc}", decision))
    conn._raise(Denied(f"refused: rows of type `{type(row).__name__}` cannot be masked", decision))
    raise AssertionError("unreachable")


def _sql_text(operation: Any, raw: Any) -> str:
    if isinstance(operation, str):
        return operation
    if isinstance(operation, (bytes, bytearray)):
        return bytes(operation).decode("utf-8")
    as_string = getattr(operation, "as_string", None)  # psycopg.sql.Composable
    if as_string is not None:
        return str(as_string(raw))
    raise TypeError(f"a statement must be text, not {type(operation).__name__}")


# -- the entry point ---------------------------------------------------------------------
def guard(
    raw_connection: Any,
    engine: Engine,
    *,
    subject: Subject | Mapping[str, Any] | str,
    resource: Resource | Mapping[str, Any] | str | None,
    session: str | None,
    approval_timeout: float = 0.0,
    tags: Mapping[str, Sequence[str]] | None = None,
    mask_key: bytes | str | None = None,
    driver: Any = None,
    estimate_bound: int = 100_000,
) -> GuardedConnection:
    """Wrap a PEP 249 connection so that every statement passes subguard's gate.

    `resource.schema` gives tables, columns and tags; without it the schema is read from
    the live database (SQLite, PostgreSQL) with `tags` (`{"users.email": ["pii"]}`), and
    read again after DDL the gate let through. `approval_timeout` > 0 waits that long for
    a responder when a statement is held. `mask_key` keys the `hash` mask (else
    `SUBGUARD_MASK_KEY`). `driver` is the DB-API module, when it cannot be found from the
    connection's type. `estimate_bound` caps SQLite's count behind `estimated_rows` (a
    write matching more rows is estimated at `estimate_bound + 1`).
    """
    module = driver if driver is not None else _driver_module(raw_connection)
    drv = _Driver(module)
    res = as_resource(resource)
    dialect = res.dialect or _SQL_KINDS.get(res.kind.lower()) or _DIALECT_BY_MODULE.get(drv.name)
    if dialect is None:
        raise ValueError("cannot tell the SQL dialect: give resource.dialect or resource.kind")
    if not res.kind:
        res = attrs.evolve(res, kind=_KIND_BY_DIALECT.get(dialect, dialect))
    introspected = res.schema is None
    if introspected:
        res = attrs.evolve(res, schema=introspect(raw_connection, dialect, tags))
    elif tags:
        res = attrs.evolve(res, schema=tag_given(res.schema or {}, tags))
    gate = Gate(
        engine,
        subject=subject,
        resource=res,
        session=session,
        approval_timeout=approval_timeout,
        mask_key=mask_key,
    )
    return GuardedConnection(
        raw_connection,
        gate,
        driver=drv,
        dialect=dialect,
        tags=tags or {},
        introspected=introspected,
        estimate_bound=estimate_bound,
    )
