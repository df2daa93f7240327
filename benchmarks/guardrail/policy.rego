# The 20-rule guardrail policy of the policy-evaluation benchmark, in Rego v1 for regopy.
#
# The 20 decision rules are those of policy.guard, verbatim but for one workaround:
# regopy 1.5.2's sprintf renders a string produced by upper()/lower() with its quotes
# (`sprintf("%s", [upper("x")])` gives `"X"` in quotes), so the three messages built
# from upper(s.kind) use concat instead — the same strings, as OPA would produce them.
#
# Rego has no built-in notion of an effect, so `decision` at the end combines the rules
# the way subguard does (terminate > deny > approve > allow, with mask on an allowed
# request; nothing decides → deny): one `query_bundle_entrypoint` call answers it all.

package guard.bench

import input.sql.statements

# T1. COPY … TO PROGRAM runs a shell on the database host.
terminate contains "COPY TO PROGRAM" if {
    some s in statements
    s.kind == "copy"
    s.copy_program
}

# T2. Server-side functions that read files or reach other hosts.
terminate contains msg if {
    some s in statements
    some f in s.functions
    f in {"pg_read_file", "pg_ls_dir", "lo_export", "dblink_exec"}
    msg := sprintf("function %s", [f])
}

# T3. A session a responder already killed stays dead.
terminate contains "session terminated" if {
    input.session.terminated
}

# D1. Destructive DDL never runs.
deny contains msg if {
    some s in statements
    s.kind in {"drop", "truncate"}
    msg := concat("", [upper(s.kind), " is never allowed"])
}

# D2. Fail closed on text that does not parse.
deny contains "unparseable statement" if {
    some s in statements
    s.kind == "unparseable"
}

# D3. Protected tables are written only by the dba group.
deny contains msg if {
    some t in input.sql.tables_written
    t in {"audit_log", "payments", "ledger"}
    not "dba" in input.subject.groups
    msg := sprintf("%s is protected", [t])
}

# D4. Secret tables are read only by the dba group.
deny contains msg if {
    some t in input.sql.tables_read
    t in {"api_keys", "credentials"}
    not "dba" in input.subject.groups
    msg := sprintf("reading %s needs dba", [t])
}

# D5. Privilege changes are for the dba group.
deny contains msg if {
    some s in statements
    s.kind in {"grant", "revoke"}
    not "dba" in input.subject.groups
    msg := concat("", [upper(s.kind), " needs dba"])
}

# D6. Writing query results to the server's file system.
deny contains "SELECT INTO OUTFILE" if {
    some s in statements
    s.into_outfile
}

# D7. CI jobs never write to production.
deny contains "ci may not write in prod" if {
    input.resource.env == "prod"
    "ci" in input.subject.groups
    count(input.sql.tables_written) > 0
}

# A1. Writes without a WHERE clause need a human.
approve contains msg if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
    some t in s.tables_written
    msg := sprintf("unbounded %s of %s", [s.kind, t])
}

# A2. Writes hidden inside a statement (data-modifying CTEs and the like).
approve contains msg if {
    some s in statements
    s.nested
    s.kind in {"insert", "update", "delete", "merge"}
    msg := sprintf("nested %s", [s.kind])
}

# A3. Unlimited reads of the big tables.
approve contains msg if {
    some s in statements
    s.kind == "select"
    not s.has_limit
    some t in s.tables_read
    t in {"events", "page_views"}
    msg := sprintf("unlimited read of %s", [t])
}

# A4. Schema changes outside the dba group.
approve contains msg if {
    some s in statements
    s.kind in {"create", "alter"}
    not "dba" in input.subject.groups
    msg := concat("", [upper(s.kind), " needs approval"])
}

# A5. No further writes while an approval is pending in the session.
approve contains "write while an approval is pending" if {
    input.session.approvals_pending > 0
    count(input.sql.tables_written) > 0
}

# L1–L3. Who may run statements at all.
default allow := false

allow if "agents" in input.subject.groups

allow if "dba" in input.subject.groups

allow if {
    "ci" in input.subject.groups
    input.resource.env != "prod"
}

# M1. PII columns in the output are masked unless the subject may read them.
mask contains name if {
    some col in input.sql.columns_read
    col.in_output
    "pii" in col.tags
    not "pii-readers" in input.subject.groups
    name := sprintf("%s.%s", [col.table, col.column])
}

# M2. Card numbers and other sensitive columns are masked for everyone but the dba group.
mask contains name if {
    some col in input.sql.columns_read
    some tag in col.tags
    tag in {"pci", "sensitive"}
    not "dba" in input.subject.groups
    name := sprintf("%s.%s", [col.table, col.column])
}

# The combination (not a decision rule): one entrypoint answers the whole decision.
effect := "terminate" if {
    count(terminate) > 0
} else := "deny" if {
    count(deny) > 0
} else := "approve" if {
    count(approve) > 0
} else := "mask" if {
    allow
    count(mask) > 0
} else := "allow" if {
    allow
} else := "deny"

reasons := terminate if {
    effect == "terminate"
} else := deny if {
    effect == "deny"
} else := approve if {
    effect == "approve"
} else := set()

masks := mask if {
    effect == "mask"
} else := set()

decision := {"effect": effect, "reasons": reasons, "masks": masks}
