"""Transaction control, settings, privilege changes and ALTER actions, in every spelling."""

from __future__ import annotations

import pytest

from subguard.sql import analyze


def _one(sql: str, dialect: str = "postgres"):  # type: ignore[no-untyped-def]
    facts = analyze(sql, dialect=dialect)
    assert facts.parse_error is None, facts.parse_error
    return facts.statements[0]


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite", "tsql", "snowflake", ""])
@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("START TRANSACTION", "transaction"),
        ("START TRANSACTION READ ONLY", "transaction"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", "transaction"),
        ("BEGIN READ ONLY", "transaction"),
        ("BEGIN", "transaction"),
        ("SAVEPOINT a", "transaction"),
        ("RELEASE SAVEPOINT a", "transaction"),
        ("ROLLBACK TO SAVEPOINT a", "transaction"),
        ("ABORT", "transaction"),
        ("COMMIT", "transaction"),
        ("DISCARD ALL", "set"),
        ("DEALLOCATE p", "prepare"),
        ("DEALLOCATE ALL", "prepare"),
    ],
)
def test_transaction_control_has_a_kind(dialect: str, sql: str, kind: str) -> None:
    facts = analyze(sql, dialect=dialect)
    assert [s.kind for s in facts.statements] == [kind]
    assert facts.parse_error is None


@pytest.mark.parametrize(
    "sql",
    ["SAVEPOINT a DROP TABLE x", "START TRANSACTION DROP", "DISCARD users", "RELEASE"],
)
def test_control_words_followed_by_anything_else_stay_unparseable(sql: str) -> None:
    assert [s.kind for s in analyze(sql, dialect="postgres").statements] == ["unparseable"]


def test_control_statement_then_a_drop_lists_both() -> None:
    kinds = [s.kind for s in analyze("START TRANSACTION; DROP TABLE x", dialect="postgres").statements]
    assert kinds == ["transaction", "drop"]


@pytest.mark.parametrize(
    ("dialect", "sql", "setting", "scope"),
    [
        ("postgres", "SET \"role\" = 'postgres'", "role", None),
        ("postgres", "SET role postgres", "role", None),
        ("postgres", "SET LOCAL ROLE x", "role", "local"),
        ("postgres", "SET SESSION AUTHORIZATION postgres", "session_authorization", None),
        ("postgres", "SET session_authorization = 'postgres'", "session_authorization", None),
        ("postgres", "SELECT set_config('role', 'postgres', false)", "role", None),
        ("postgres", "SELECT set_config('ROLE', 'postgres', false)", "role", None),
        ("postgres", "SELECT set_config(x, 'postgres', false) FROM t", "*", None),
        ("postgres", "SET search_path TO a, b", "search_path", None),
        ("postgres", "SET SESSION statement_timeout = 5", "statement_timeout", "session"),
        ("postgres", "RESET ROLE", "role", "reset"),
        ("postgres", "ALTER SYSTEM SET log_statement = 'none'", "log_statement", "system"),
        ("postgres", "ALTER DATABASE test SET log_statement = 'none'", "log_statement", "database"),
        ("mysql", "SET GLOBAL general_log = 0", "general_log", "global"),
        ("mysql", "SET @@global.general_log = 0", "general_log", "global"),
        ("mysql", "SET PERSIST max_connections = 1", "max_connections", "global"),
        ("mysql", "SET PASSWORD FOR root = 'x'", "password", None),
        ("mysql", "SET DEFAULT ROLE ALL TO agent", "default_role", None),
        ("mysql", "SET sql_log_bin = 0", "sql_log_bin", None),
        ("snowflake", "USE ROLE ACCOUNTADMIN", "role", None),
        ("snowflake", "USE SECONDARY ROLES ALL", "role", None),
        ("snowflake", "ALTER ACCOUNT SET ENABLE_X = TRUE", "enable_x", "system"),
        ("tsql", "SET NOCOUNT ON", "nocount", None),
    ],
)
def test_settings_are_named_the_same_under_every_spelling(
    dialect: str, sql: str, setting: str, scope: str | None
) -> None:
    stmt = _one(sql, dialect)
    assert stmt.setting == setting
    assert setting in stmt.settings
    assert stmt.setting_scope == scope


def test_mysql_lists_every_assignment() -> None:
    stmt = _one("SET @x = 1, GLOBAL slow_query_log = 0", "mysql")
    assert stmt.settings == frozenset({"slow_query_log"})
    assert stmt.setting_scope == "global"


@pytest.mark.parametrize(
    ("dialect", "sql", "object_type"),
    [
        ("postgres", "GRANT SELECT ON users TO x", "table"),
        ("postgres", "REVOKE ALL ON users FROM x", "table"),
        ("postgres", "ALTER GROUP admins ADD USER agent", "group"),
        ("postgres", "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO agent", "default privileges"),
        ("postgres", "ALTER TABLE users OWNER TO agent", "table"),
        ("postgres", "ALTER TABLE users DISABLE ROW LEVEL SECURITY", "table"),
        ("postgres", "CREATE POLICY p ON users USING (true)", "policy"),
        ("postgres", "CREATE ROLE r", "role"),
        ("mysql", "ALTER USER root IDENTIFIED BY 'x'", "user"),
        ("mysql", "SET PASSWORD FOR root = 'x'", None),
        ("tsql", "ALTER SERVER ROLE sysadmin ADD MEMBER agent", "server role"),
        ("tsql", "ALTER ROLE db_owner ADD MEMBER agent", "role"),
        ("tsql", "ALTER LOGIN sa ENABLE", "login"),
        ("tsql", "EXEC sp_addrolemember 'db_owner', 'agent'", None),
        ("snowflake", "GRANT ROLE accountadmin TO USER agent", "role"),
    ],
)
def test_privilege_changes(dialect: str, sql: str, object_type: str | None) -> None:
    stmt = _one(sql, dialect)
    assert stmt.privilege_change is True
    assert stmt.object_type == object_type


@pytest.mark.parametrize(
    "sql", ["SET search_path TO a", "ALTER TABLE t ADD COLUMN c int", "SELECT 1", "RESET ROLE"]
)
def test_no_privilege_change(sql: str) -> None:
    assert _one(sql).privilege_change is False


@pytest.mark.parametrize(
    ("dialect", "sql", "actions"),
    [
        ("postgres", 'ALTER TABLE users ADD COLUMN "x;" int, DROP COLUMN ssn', {"add", "drop"}),
        ("postgres", 'ALTER TABLE users ADD COLUMN "DROP" int', {"add"}),
        ("postgres", "ALTER TABLE t DETACH PARTITION p", {"detach"}),
        ("postgres", "ALTER TABLE t ATTACH PARTITION p FOR VALUES IN (1)", {"attach"}),
        ("postgres", "ALTER TABLE t RENAME TO u", {"rename"}),
        ("postgres", "ALTER TABLE t RENAME COLUMN a TO b", {"rename"}),
        ("postgres", "ALTER TABLE t ALTER COLUMN c TYPE text", {"type"}),
        ("postgres", "ALTER TABLE t ALTER c SET DATA TYPE text", {"type"}),
        ("postgres", "ALTER TABLE t ALTER COLUMN c DROP NOT NULL", {"drop_not_null"}),
        ("postgres", "ALTER TABLE t ALTER COLUMN c DROP DEFAULT", {"drop_default"}),
        ("postgres", "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1", {"set_default"}),
        ("postgres", "ALTER TABLE t OWNER TO bob", {"owner"}),
        ("postgres", "ALTER TABLE t SET SCHEMA archive", {"set_schema"}),
        ("postgres", "ALTER TABLE t DROP CONSTRAINT t_pkey", {"drop"}),
        ("mysql", "ALTER TABLE t MODIFY c text", {"type"}),
        ("mysql", "ALTER TABLE t DROP c", {"drop"}),
        ("mysql", "ALTER TABLE t CHANGE a b int", {"type"}),
        ("tsql", "ALTER TABLE t ALTER COLUMN c bigint", {"type"}),
        ("snowflake", "ALTER TABLE t SWAP WITH u", {"rename"}),
        ("sqlite", "ALTER TABLE t RENAME TO u", {"rename"}),
        ("bigquery", "ALTER TABLE ds.t DROP COLUMN c", {"drop"}),
        ("postgres", "ALTER TABLE users* DROP COLUMN ssn", {"drop"}),
        ("postgres", "ALTER TABLE ONLY users DROP COLUMN ssn", {"drop"}),
        ("postgres", "ALTER FUNCTION f(int) OWNER TO agent", {"owner"}),
        ("postgres", "ALTER PROCEDURE p() RENAME TO q", {"rename"}),
        ("postgres", "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES b (id) ON DELETE CASCADE", {"add"}),
    ],
)
def test_alter_actions(dialect: str, sql: str, actions: set[str]) -> None:
    stmt = _one(sql, dialect)
    assert stmt.kind == "alter"
    assert stmt.alter_actions == frozenset(actions)
