"""Steps for code the statement runs and places it reaches: `EXEC('…')`, routine bodies,
SQL in string arguments (`query_to_xml('…')`, `dblink(…, '…')`), and external I/O (server
files, programs, object stores, other servers).
"""

from __future__ import annotations

from typing import Any, Final

from sqlglot import exp

from subguard.sql._draft import Context, Draft
from subguard.sql._kinds import node_kind


def executes(d: Draft, ctx: Context) -> None:
    """T-SQL `EXEC('…')`: the string is run as SQL, so analyse it as a nested statement."""
    node = d.node
    if not isinstance(node, exp.Execute):
        return
    for i, text in enumerate(strings_of(node)):
        d.adopt(ctx.nested_text(text, f"{d.path}.execute" if i == 0 else f"{d.path}.execute[{i}]"))
    for table in d.table_nodes:
        d.not_tables.add(id(table))


def function_body(d: Draft, ctx: Context) -> None:
    """CREATE FUNCTION/PROCEDURE bodies in SQL or PL/pgSQL run later as statements."""
    node = d.node
    if not isinstance(node, exp.Create) or d.object_type not in ("function", "procedure"):
        return
    body = node.expression
    text: str | None = None
    if isinstance(body, (exp.Heredoc, exp.Literal)) and (
        isinstance(body, exp.Heredoc) or body.is_string
    ):
        text = str(body.this)
    language = ""
    for prop in node.find_all(exp.LanguageProperty):
        language = str(prop.name).lower()
    from subguard.sql._describe import describe
    from subguard.sql._procedural import READ_LANGUAGES, routine_body

    path = f"{d.path}.function_body"
    if text is None and isinstance(body, exp.Expr) and language in READ_LANGUAGES:
        # A body sqlglot parsed (BigQuery `AS (x + 1)`, T-SQL `AS BEGIN … END`): its
        # statements are listed, its expressions were walked with the rest of the tree.
        statements = [n for n in body.walk() if node_kind(n) not in (None, "select")]
        for i, stmt in enumerate(statements):
            if isinstance(stmt.parent, exp.Subquery) or (stmt is body and node_kind(body) is None):
                continue
            d.adopt(describe(stmt, (), f"{path}[{i}]", ctx, nested=True))
        return
    routine_body(d, ctx, text, language, path)


#: Functions that reach outside the database, and how.
FUNCTION_IO: Final = {
    **dict.fromkeys(
        ("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write",
         "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls", "pg_ls_logdir",
         "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
         "pg_ls_logicalmapdir", "pg_ls_replslotdir", "lo_import", "lo_export", "load_file",
         "readfile", "writefile", "read_csv", "read_csv_auto", "read_parquet", "read_json",
         "read_json_auto", "read_text", "read_blob", "pg_current_logfile"),
        "server_file",
    ),
    **dict.fromkeys(
        ("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
         "dblink_open", "dblink_fetch", "dblink_close", "dblink_get_result", "dblink_get_notify",
         "dblink_get_connections", "dblink_is_busy", "dblink_cancel_query", "dblink_error_message",
         "dblink_disconnect", "dblink_build_sql_insert", "dblink_build_sql_update",
         "dblink_build_sql_delete", "openquery", "openrowset", "opendatasource"),
        "other_server",
    ),
    **dict.fromkeys(("sys_exec", "sys_eval", "xp_cmdshell", "load_extension", "edit"), "program"),
}  # fmt: skip

#: Functions whose string arguments the database runs as SQL: name → which arguments
#: (indexes; -1 is the last string argument).
SQL_ARGUMENT_FUNCTIONS: Final = {
    "query_to_xml": (0,), "query_to_xmlschema": (0,), "query_to_xml_and_xmlschema": (0,),
    "crosstab": (0, 1), "dblink": (-1,), "dblink_exec": (-1,), "dblink_send_query": (-1,),
    "dblink_open": (-1,), "openquery": (-1,), "openrowset": (-1,),
}  # fmt: skip

#: Functions that read a whole table named by a string argument (the first).
TABLE_ARGUMENT_FUNCTIONS: Final = frozenset(
    {"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema"}
)

#: Functions that read what the analysis cannot enumerate (whole schemas, a cursor).
OPAQUE_FUNCTIONS: Final = frozenset(
    {"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml",
     "database_to_xmlschema", "database_to_xml_and_xmlschema", "cursor_to_xml",
     "cursor_to_xmlschema", "dblink_fetch"}
)  # fmt: skip


def external_io(d: Draft, ctx: Context) -> None:
    """Where the statement reaches outside the database: files, programs, other places.

    `server_file` (files on the database host), `program` (a command run there),
    `remote` (object stores, stages), `other_server` (dblink, linked servers).
    """
    node = d.node
    for name in d.functions:
        io = FUNCTION_IO.get(name)
        if io is not None:
            d.external_io.add(io)
    if d.copy_program:
        d.external_io.add("program")
    if d.into_outfile:
        d.external_io.add("server_file")
    if isinstance(node, exp.Copy):
        this = node.this
        if isinstance(this, exp.Schema):
            this = this.this
        places = [this.this] if isinstance(this, exp.Table) else []
        places += list(node.args.get("files") or ())
        for place in places:
            d.external_io |= _place_io(place)
    elif isinstance(node, (exp.Export, exp.Put, exp.Get)):
        d.external_io.add("remote")
    elif isinstance(node, exp.LoadData):
        # MySQL LOAD DATA INFILE, BigQuery LOAD DATA … FROM FILES (uris = ['gs://…']).
        uris = [str(n.this) for n in node.find_all(exp.Literal) if n.is_string]
        d.external_io.add("remote" if any("://" in u for u in uris) else "server_file")
    elif isinstance(node, exp.Pragma):
        target = node.this
        name = target.this if isinstance(target, exp.EQ) else target
        if isinstance(name, (exp.Var, exp.Column, exp.Identifier, exp.Anonymous)):
            d.settings.append(str(name.name).lower())
    elif isinstance(node, exp.Attach):
        d.external_io.add("server_file")
    elif isinstance(node, exp.Select) and isinstance(node.args.get("into"), exp.Into):
        into = node.args["into"]
        if not isinstance(into.this, exp.Table):
            d.external_io.add("server_file")


def _place_io(place: Any) -> set[str]:
    if isinstance(place, exp.Table):
        place = place.this
    if isinstance(place, exp.Identifier) and not place.quoted:
        word = str(place.this).upper()
        if word in ("STDOUT", "STDIN"):
            return set()
        if word == "PROGRAM":
            return {"program"}
        return set()  # a table name
    if isinstance(place, exp.Var) and str(place.this).startswith("@"):
        return {"remote"}
    if isinstance(place, exp.Literal) and place.is_string:
        return {"remote"} if "://" in str(place.this) else {"server_file"}
    if isinstance(place, (exp.Identifier, exp.Var, exp.Literal)):
        return {"server_file"}
    return set()


_LITERAL_FUNCTIONS: Final = (
    frozenset(SQL_ARGUMENT_FUNCTIONS) | TABLE_ARGUMENT_FUNCTIONS | OPAQUE_FUNCTIONS
)


def literal_sql(d: Draft, ctx: Context) -> None:
    """SQL in string arguments the database runs (`query_to_xml('…')`, `crosstab('…')`,
    `dblink(conn, '…')`), analysed as nested statements; a computed argument is opaque."""
    if not d.functions & _LITERAL_FUNCTIONS:
        return
    count = 0
    for call in d.node.find_all(exp.Anonymous):
        name = str(call.name).lower()
        args = list(call.expressions)
        if name in OPAQUE_FUNCTIONS:
            d.opaque_code = True
            continue
        texts: list[str] = []
        if name in TABLE_ARGUMENT_FUNCTIONS and args:
            first = args[0]
            if isinstance(first, exp.Literal) and first.is_string:
                texts.append(f"SELECT * FROM {first.this}")
            else:
                d.opaque_code = True
        positions = SQL_ARGUMENT_FUNCTIONS.get(name)
        if positions is not None:
            strings = [a for a in args if not isinstance(a, (exp.Boolean, exp.Null))]
            if name.startswith("dblink") and len(strings) == 1:
                positions = (0,)
            for pos in positions:
                if not strings or pos >= len(strings):
                    continue
                arg = strings[pos]
                if isinstance(arg, exp.Literal) and arg.is_string:
                    texts.append(str(arg.this))
                else:
                    d.opaque_code = True
        for text in texts:
            found = ctx.nested_text(text, f"{d.path}.literal[{count}]")
            count += 1
            if not found:
                d.opaque_code = True
            d.adopt(found)


def strings_of(node: exp.Expr) -> list[str]:
    texts: list[str] = []
    for child in node.walk():
        if (
            (isinstance(child, exp.Literal) and child.is_string)
            or (isinstance(child, exp.Identifier) and child.quoted)
            or isinstance(child, (exp.National, exp.RawString))
        ):
            texts.append(str(child.this))
    return texts
