"""Code the analysis cannot read (`opaque_code`), SQL inside literals, and `external_io`."""

from __future__ import annotations

import pytest

from subguard.sql import analyze


def _kinds(sql: str, dialect: str = "postgres") -> list[tuple[str, str, bool]]:
    return [(s.kind, s.path, s.opaque_code) for s in analyze(sql, dialect=dialect).statements]


@pytest.mark.parametrize(
    ("dialect", "sql", "opaque"),
    [
        ("postgres", "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ import os $$", True),
        ("postgres", "CREATE FUNCTION f() RETURNS int AS 'lib.so', 'f' LANGUAGE c", True),
        ("postgres", "DO LANGUAGE plperlu $$ system('id') $$", True),
        ("postgres", "CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE t; END $$", True),
        ("postgres", "CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM ' || t; END $$", True),
        ("postgres", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN FOR r IN EXECUTE q LOOP END LOOP; END $$", True),
        ("postgres", "SELECT query_to_xml(q, true, false, '') FROM t", True),
        ("postgres", "SELECT database_to_xml(true, false, '')", True),
        ("snowflake", "CREATE FUNCTION f() RETURNS FLOAT LANGUAGE JAVASCRIPT AS 'return 1'", True),
        ("bigquery", "CREATE FUNCTION ds.f(x INT64) RETURNS INT64 LANGUAGE js AS r'return x;'", True),
        ("bigquery", "EXECUTE IMMEDIATE CONCAT('DROP TABLE ', x)", True),
        ("postgres", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$", False),
        ("postgres", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t WHERE id = 1; RETURN NEW; END $$", False),
        ("postgres", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN IF (SELECT count(*) FROM users) > 0 THEN n := 1; END IF; RETURN n; END $$", False),
        ("postgres", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", False),
        ("bigquery", "CREATE FUNCTION ds.f(x INT64) AS (x + 1)", False),
        ("postgres", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM users LOOP UPDATE users SET name = 'x' WHERE id = r.id; END LOOP; END $$", False),
        ("postgres", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN FOR i IN 1..10 LOOP NULL; END LOOP; END $$", False),
        ("postgres", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN FOR r IN EXECUTE q LOOP NULL; END LOOP; END $$", True),
    ],
)
def test_opaque_code(dialect: str, sql: str, opaque: bool) -> None:
    assert analyze(sql, dialect=dialect).statements[0].opaque_code is opaque


@pytest.mark.parametrize(
    ("sql", "inner"),
    [
        ("CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; RETURN NEW; END $$", "drop"),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$", "drop"),
        ("CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('TRUNCATE %I', t); END $$", "truncate"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM users; SELECT 1; END", "delete"),
        ("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DROP TABLE users; END", "drop"),
        ("CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM users", "delete"),
        ("SELECT query_to_xml('DELETE FROM users RETURNING ssn', true, false, '')", "delete"),
        ("SELECT * FROM crosstab('SELECT a, b, c FROM users') AS ct(a text, b int)", "select"),
        ("SELECT dblink_exec('host=x', 'DROP TABLE users')", "drop"),
        ("SELECT dblink('DROP TABLE users')", "drop"),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN FOR i IN 1..10 LOOP DELETE FROM users; END LOOP; END $$", "delete"),
    ],
)
def test_sql_in_bodies_and_literals_is_listed(sql: str, inner: str) -> None:
    facts = analyze(sql, dialect="postgres")
    assert inner in [s.kind for s in facts.statements if s.nested]


@pytest.mark.parametrize(
    ("dialect", "sql", "inner"),
    [
        ("mysql", "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW DELETE FROM users", "delete"),
        ("mysql", "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW FOLLOWS t0 DROP TABLE users", "drop"),
        ("mysql", "CREATE PROCEDURE p() BEGIN DECLARE n INT; DELETE FROM users; END", "delete"),
        ("sqlite", "CREATE TRIGGER t AFTER INSERT ON orders BEGIN SELECT 1; DELETE FROM users; END", "delete"),
        ("tsql", "CREATE TRIGGER t ON orders AFTER INSERT AS DELETE FROM users", "delete"),
        ("tsql", "CREATE PROCEDURE p AS DELETE FROM users", "delete"),
    ],
)
def test_trigger_and_procedure_bodies_in_other_dialects(dialect: str, sql: str, inner: str) -> None:
    facts = analyze(sql, dialect=dialect)
    assert [s.path for s in facts.statements if not s.nested] == ["0"]
    assert inner in [s.kind for s in facts.statements if s.nested]
    assert inner in [s.kind for s in facts.statements if s.nested]


def test_begin_atomic_is_one_statement() -> None:
    facts = analyze("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DROP TABLE users; END; SELECT 1", dialect="postgres")
    assert [(s.kind, s.path) for s in facts.statements] == [
        ("create", "0"), ("drop", "0.function_body"), ("select", "1"),
    ]


def test_table_to_xml_reads_every_column() -> None:
    schema = {"users": {"id": "int", "ssn": {"type": "text", "tags": ["pii"]}}}
    facts = analyze("SELECT table_to_xml('users', true, false, '')", dialect="postgres", schema=schema)
    assert "users" in facts.tables_read
    assert any("pii" in c.tags for c in facts.columns_read)


@pytest.mark.parametrize(
    ("dialect", "sql", "io"),
    [
        ("postgres", "SELECT dblink_connect_u('host=evil')", "other_server"),
        ("postgres", "SELECT dblink_send_query('c', 'SELECT 1')", "other_server"),
        ("postgres", "SELECT * FROM dblink_fetch('c', 10) AS t(a text)", "other_server"),
        ("postgres", "SELECT * FROM dblink_get_result('c') AS t(a text)", "other_server"),
        ("postgres", "SELECT pg_ls_waldir()", "server_file"),
        ("postgres", "SELECT pg_ls_logdir()", "server_file"),
        ("postgres", "SELECT pg_file_write('/tmp/x', 'y', false)", "server_file"),
        ("postgres", "SELECT lo_import('/etc/passwd')", "server_file"),
        ("postgres", "SELECT lo_export(1, '/tmp/x')", "server_file"),
        ("postgres", "COPY users TO '/tmp/x'", "server_file"),
        ("postgres", "COPY users FROM '/tmp/x'", "server_file"),
        ("postgres", "COPY (SELECT 1) TO PROGRAM 'curl'", "program"),
        ("postgres", "CREATE SERVER evil FOREIGN DATA WRAPPER postgres_fdw", "other_server"),
        ("postgres", "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN FOR i IN 1..(SELECT length(pg_read_file('/x'))) LOOP NULL; END LOOP; END $$", "server_file"),
        ("snowflake", "COPY INTO 's3://bucket/x' FROM users", "remote"),
        ("snowflake", "COPY INTO @stage/x FROM (SELECT * FROM users)", "remote"),
        ("snowflake", "CREATE STAGE s URL = 's3://x'", "remote"),
        ("bigquery", "EXPORT DATA OPTIONS (uri = 'gs://b/x*.csv', format = 'CSV') AS SELECT * FROM ds.users", "remote"),
        ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "server_file"),
        ("tsql", "EXEC master..xp_cmdshell 'dir'", "program"),
        ("tsql", "SELECT * FROM OPENQUERY(evil, 'SELECT 1')", "other_server"),
        ("mysql", "SELECT * FROM users INTO OUTFILE '/tmp/x'", "server_file"),
        ("mysql", "SELECT load_file('/etc/passwd')", "server_file"),
    ],
)
def test_external_io(dialect: str, sql: str, io: str) -> None:
    facts = analyze(sql, dialect=dialect)
    assert io in facts.statements[0].external_io


@pytest.mark.parametrize(
    "sql", ["COPY users TO STDOUT", "COPY users FROM STDIN", "SELECT 1", "COPY (SELECT 1) TO STDOUT"]
)
def test_client_side_copy_is_not_external(sql: str) -> None:
    assert analyze(sql, dialect="postgres").statements[0].external_io == frozenset()


@pytest.mark.parametrize(
    "sql",
    [
        'EXPLAIN ANALYZE DELETE FROM ""users"" WHERE id = id',
        'PREPARE p AS DELETE FROM ""users""',
        "EXPLAIN ANALYZE SELEC * FRM users",
    ],
)
def test_a_statement_that_must_be_there_but_does_not_parse_is_unparseable(sql: str) -> None:
    kinds = [s.kind for s in analyze(sql, dialect="postgres").statements]
    assert "unparseable" in kinds
