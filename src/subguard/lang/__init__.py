"""subguard.lang: the policy language — parse, check, compile and run Rego-style rules.

This module is the language's whole public surface; everything else under
`subguard.lang` is private to it (import-linter holds the rest of subguard to that).
The language knows nothing of SQL, commands or decisions: a caller names its
entrypoint rules (`Entrypoint`), reads what each definition requires of `input`
(`Definition.requires`) to build an index, and hands it back as a `Selector`.
"""

from subguard.errors import Location, PolicyError, PolicyErrors
from subguard.lang.ast import (
    COMPLETE,
    DEFAULT,
    FUNCTION,
    OBJECT,
    SET,
    BinOp,
    Module,
    NotLiteral,
    Ref,
    Rule,
    RuleKind,
    Scalar,
)
from subguard.lang.builtins import BUILTINS, Builtin, BuiltinError
from subguard.lang.cache import dump_module, load_module, parser_digest
from subguard.lang.compiler import STAGES, Stage, compile_policy
from subguard.lang.explanation import Explanation, explain
from subguard.lang.fmt import format_module, format_text
from subguard.lang.parser import parse_module, read_source
from subguard.lang.policy import CompiledPolicy, Default, Definition, Fault, Results, Selector
from subguard.lang.program import Entrypoint
from subguard.lang.requirements import EACH, Requirement
from subguard.lang.runtime import UNDEFINED_ERRORS
from subguard.lang.types import Schema, Type, conform, parse_type
from subguard.lang.values import freeze, from_json, marshal, to_json

__all__ = [
    "BUILTINS",
    "COMPLETE",
    "DEFAULT",
    "EACH",
    "FUNCTION",
    "OBJECT",
    "SET",
    "STAGES",
    "UNDEFINED_ERRORS",
    "BinOp",
    "Builtin",
    "BuiltinError",
    "CompiledPolicy",
    "Default",
    "Definition",
    "Entrypoint",
    "Explanation",
    "Fault",
    "Location",
    "Module",
    "NotLiteral",
    "PolicyError",
    "PolicyErrors",
    "Ref",
    "Requirement",
    "Results",
    "Rule",
    "RuleKind",
    "Scalar",
    "Schema",
    "Selector",
    "Stage",
    "Type",
    "compile_policy",
    "conform",
    "dump_module",
    "explain",
    "format_module",
    "format_text",
    "freeze",
    "from_json",
    "load_module",
    "marshal",
    "parse_module",
    "parse_type",
    "parser_digest",
    "read_source",
    "to_json",
]
