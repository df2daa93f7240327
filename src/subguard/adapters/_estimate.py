"""Live facts: how many rows a write will touch, asked of the database the gate holds a
connection to, before the write is decided — and without running it.

- PostgreSQL (psycopg 3): `EXPLAIN (FORMAT JSON)` of the statement with its parameters;
  the estimate is the planned rows of the node feeding the `ModifyTable` node. EXPLAIN
  without ANALYZE plans and never executes; it still runs inside a transaction block
  that is rolled back (a savepoint inside the caller's transaction, else `BEGIN` …
  `ROLLBACK`), so that even planning (constant-folding an `IMMUTABLE` function) leaves
  nothing behind and the caller's transaction state, autocommit included, is exactly as
  it was. It is sent through the extended protocol, which refuses a second statement.
- SQLite: a bounded `count(*)` of the same WHERE (`subguard.sql.count_query`), run only
  when that WHERE calls no function the application could have registered, every table
  it reads is a base table (not a view), and no function was registered through the
  guarded connection.

`estimated_rows` is `None` (null to rules) when the text is not one UPDATE or DELETE
(or MERGE on PostgreSQL), the driver is another, or the estimate fails; a failure is
logged at debug level by its type only (a database's message may quote parameters).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from subguard.sql import analyze, count_query

__all__ = ["ESTIMATE_PATH", "Estimator", "plan_rows"]

_log = logging.getLogger(__name__)

#: Where rules read the estimate.
ESTIMATE_PATH: Final = "input.sql.statements[i].estimated_rows"

#: Statement kinds estimated, per dialect.
_KINDS: Final = {
    "postgres": frozenset({"update", "delete", "merge"}),
    "sqlite": frozenset({"update", "delete"}),
}

#: The most parameter sets of one `executemany` estimated one by one; beyond, the sum
#: so far stands for all when it already exceeds the bound, else there is no estimate.
MANY_MAX: Final = 1000


def plan_rows(plan: Any) -> int | None:
    """The planned rows feeding the first `ModifyTable` node of an `EXPLAIN (FORMAT
    JSON)` result (a list with one `{"Plan": …}`), or `None` if there is none."""
    if isinstance(plan, str | bytes):
        try:
            plan = json.loads(plan)
        except ValueError:
            return None
    if not isinstance(plan, list) or len(plan) != 1 or not isinstance(plan[0], Mapping):
        return None
    stack: list[Any] = [plan[0].get("Plan")]
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        children = node.get("Plans") or []
        if node.get("Node Type") == "ModifyTable":
            for child in children:
                if isinstance(child, Mapping) and child.get("Parent Relationship") in (
                    "Outer",
                    "Member",
                    None,
                ):
                    rows = child.get("Plan Rows")
                    if isinstance(rows, int | float) and not isinstance(rows, bool) and rows >= 0:
                        return int(rows)
            return None
        stack.extend(reversed(children))
    return None


class Estimator:
    """Estimates writes on one raw driver connection (see the module)."""

    def __init__(
        self, raw: Any, dialect: str, *, bound: int, registered: Callable[[], bool] = lambda: False
    ) -> None:
        self.raw = raw
        self.dialect = dialect
        self.bound = max(int(bound), 0)
        self._registered = registered
        module = type(raw).__module__.split(".")[0]
        self._run: Callable[[str, Any], int | None] | None = None
        if dialect == "postgres" and module == "psycopg":
            self._run = self._explain
        elif dialect == "sqlite" and module == "sqlite3":
            self._run = self._count
        #: How many estimates ran (the tests and the benchmark read it).
        self.runs = 0

    def rows(
        self, text: str, parameters: Any, *, schema: Any = None, many: bool = False
    ) -> int | None:
        """The rows the single write in `text` touches with `parameters` (summed over
        the parameter sets of an `executemany`), or `None`."""
        if self._run is None:
            return None
        facts = analyze(text, dialect=self.dialect, schema=schema)
        statements = facts.statements
        if len(statements) != 1 or statements[0].kind not in _KINDS[self.dialect]:
            return None
        try:
            if not many:
                return self._run(text, parameters)
            total = 0
            for n, params in enumerate(parameters):
                if n >= MANY_MAX:
                    return total if total > self.bound else None
                rows = self._run(text, params)
                if rows is None:
                    return None
                total += rows
            return total
        except Exception as exc:
            # the message may quote a parameter: its type only
            _log.debug("write estimate failed (%s); estimated_rows is null", type(exc).__name__)
            return None

    # -- PostgreSQL --------------------------------------------------------------------
    def _explain(self, text: str, parameters: Any) -> int | None:
        import psycopg
        from psycopg.rows import tuple_row

        raw = self.raw
        self.runs += 1
        # The client-binding cursor class of the caller's factory would interpolate the
        # parameters into the text: the estimate binds them on the server, like a write.
        with (
            raw.transaction(force_rollback=True),
            psycopg.Cursor(raw, row_factory=tuple_row) as cur,
        ):
            # binary=True: the extended protocol, one statement only, with or without
            # parameters; prepare=False: nothing is left prepared on the server.
            cur.execute(f"EXPLAIN (FORMAT JSON) {text}", parameters, prepare=False, binary=True)
            row = cur.fetchone()
        return plan_rows(row[0]) if row else None

    # -- SQLite ------------------------------------------------------------------------
    def _count(self, text: str, parameters: Any) -> int | None:
        if self._registered():
            return None  # a function registered here could shadow a builtin the WHERE calls
        query = count_query(text, "sqlite", bound=self.bound)
        if query is None:
            return None
        if query.positional is not None:
            if parameters is None:
                parameters = ()
            if isinstance(parameters, Mapping) or not isinstance(parameters, Sequence):
                return None
            start, stop = query.positional
            bound_parameters: Any = tuple(parameters)[start:stop]
        else:
            bound_parameters = parameters if parameters is not None else ()
        self.runs += 1
        cur = self.raw.cursor()
        cur.row_factory = None  # plain tuples, whatever the connection's factory
        try:
            if not self._base_tables(cur, query.tables):
                return None
            cur.execute(query.text, bound_parameters)
            row = cur.fetchone()
        finally:
            cur.close()
        if not row or type(row[0]) is not int:
            return None
        return int(row[0])

    @staticmethod
    def _base_tables(cur: Any, tables: frozenset[str]) -> bool:
        """Whether every name resolves to a base table (temp ones shadow main ones)."""
        for name in tables:
            cur.execute(
                "SELECT type FROM sqlite_temp_master WHERE name = ? COLLATE NOCASE "
                "UNION ALL SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE LIMIT 1",
                (name, name),
            )
            row = cur.fetchone()
            if row is None or row[0] != "table":
                return False
        return True
