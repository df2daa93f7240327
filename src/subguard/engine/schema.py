"""The input document's schema: every field a rule may reference under `input`.

The compiler type-checks each `input.…` reference against this, so a typo such as
`s.kinds` is a load-time error instead of a rule that silently never fires. Types are
written as strings: `string`, `number`, `boolean`, `any` (dynamic, not checked),
`set<T>`, `array<T>`, `object<T>` (string keys, values of T), `T | null`, or the name of
one of the record types below. Records are closed: a field not listed is an error.
"""

from __future__ import annotations

from typing import Final

from subguard.sql import KINDS

#: Named record types, referenced by name from other entries.
RECORDS: Final[dict[str, dict[str, str]]] = {
    "Input": {
        "subject": "Subject",
        "resource": "Resource",
        "session": "Session",
        "request": "Request",
        "sql": "Sql | null",
        "command": "Command | null",
        "http": "Http | null",
        "tool": "Tool | null",
    },
    "Subject": {
        "id": "string",
        "groups": "set<string>",
        "claims": "any",
    },
    "Resource": {
        "name": "string",
        "kind": "string",
        "dialect": "string | null",
        "env": "string",
        "tags": "any",
    },
    "Session": {
        "id": "string | null",
        "started_ns": "number",
        "requests": "number",
        "denied": "number",
        "approvals_pending": "number",
        "tables_touched": "set<string>",
        "terminated": "boolean",
    },
    "Request": {
        "kind": "string",
        "text": "string",
        "fingerprint": "string | null",
        "time_ns": "number",
    },
    "Sql": {
        "dialect": "string | null",
        "statements": "array<Statement>",
        "tables_read": "set<string>",
        "tables_written": "set<string>",
        "columns_read": "array<Column>",
        "functions": "set<string>",
        "parse_error": "string | null",
    },
    "Statement": {
        "kind": "string",
        "object_type": "string | null",
        "target": "string | null",
        "tables_read": "set<string>",
        "tables_written": "set<string>",
        "tables": "array<Table>",
        "columns_read": "array<Column>",
        "output_columns": "array<OutputColumn>",
        "has_where": "boolean",
        "has_limit": "boolean",
        "functions": "set<string>",
        "copy_program": "boolean",
        "into_outfile": "boolean",
        "grants": "array<Grant>",
        "nested": "boolean",
        "path": "string",
        "upsert": "boolean",
        "temporary": "boolean",
        "opaque_code": "boolean",
        "setting": "string | null",
        "settings": "set<string>",
        "setting_scope": "string | null",
        "privilege_change": "boolean",
        "alter_actions": "set<string>",
        "external_io": "set<string>",
        "columns_written_from": "array<ColumnFlow>",
        "estimated_rows": "number | null",
    },
    "ColumnFlow": {
        "table": "string",
        "column": "string",
        "tags": "set<string>",
        "sources": "array<Column>",
    },
    "Table": {
        "name": "string",
        "schema": "string | null",
        "catalog": "string | null",
        "qualified": "string",
    },
    "Column": {
        "table": "string | null",
        "column": "string",
        "tags": "set<string>",
        "in_output": "boolean",
        "resolved": "boolean",
        "roles": "set<string>",
    },
    "OutputColumn": {
        "name": "string",
        "sources": "array<Column>",
    },
    "Grant": {
        "action": "string",
        "privileges": "set<string>",
        "object_type": "string | null",
        "objects": "set<string>",
        "principals": "set<string>",
    },
    "Command": {
        "program": "string",
        "argv": "array<string>",
        "pipeline": "array<Invocation>",
        "sql": "Sql | null",
        "parse_error": "string | null",
    },
    "Invocation": {
        "program": "string",
        "argv": "array<string>",
        "path": "string",
        "via": "array<string>",
        "options": "object<string>",
        "operands": "array<string>",
        "paths": "array<string>",
        "writes": "array<string>",
        "redirects": "array<Redirect>",
        "dynamic": "boolean",
        "dynamic_program": "boolean",
        "stdin": "Stdin | null",
        "verb": "string | null",
        "kubernetes": "KubeCommand | null",
        "opaque_script": "boolean",
        "wrapper": "boolean",
    },
    "Redirect": {
        "op": "string",
        "target": "string",
    },
    "Stdin": {
        "kind": "string",
        "source": "string",
        "upstream": "array<string>",
    },
    "KubeCommand": {
        "verb": "string",
        "resource": "string | null",
        "resources": "array<string>",
        "names": "array<string>",
        "namespace": "string | null",
        "all_namespaces": "boolean",
        "all": "boolean",
        "question": "boolean",
        "dry_run": "boolean",
        "files": "boolean",
    },
    "Http": {
        "method": "string",
        "path": "string",
        "host": "string",
        "query": "any",
        "kubernetes": "Kubernetes | null",
    },
    "Tool": {
        "server": "string",
        "name": "string",
        "arguments": "any",
    },
    "Kubernetes": {
        "verb": "string",
        "resource": "string",
        "namespace": "string | null",
        "name": "string | null",
    },
}

#: The root of the input document.
INPUT_TYPE: Final = "Input"

#: Statement kinds, exactly as DESIGN.md lists them: the one list lives with the SQL
#: analysis that produces them.
STATEMENT_KINDS: Final = KINDS
