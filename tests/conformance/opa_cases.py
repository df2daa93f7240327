"""Runs OPA's conformance cases (YAML, vendored under `opa/`) against the compiled
language, untyped (no input schema), and says for each case whether it passed.

A case is a query over modules, `data` and `input` with the bindings it must produce
(`want_result`) or the error it must raise (`want_error_code`). The queries in the
sample are `data.<path> = x` (the document at a path) or an expression that must hold.

In scope is everything but `http.send`, the deprecated form of builtins that bind their
result to an extra output argument (`count(xs, n)`) and `with` in queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml

from subguard.errors import PolicyError, PolicyErrors
from subguard.lang import BUILTINS, compile_policy, parse_module, to_json
from subguard.lang.runtime import UNDEFINED_ERRORS

HERE = Path(__file__).parent / "opa"

_DOCUMENT_QUERY = re.compile(r"^\s*(data(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*=\s*x\s*$")


@attrs.frozen
class Case:
    file: str
    note: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.note}"


def cases() -> Iterator[Case]:
    for path in sorted(HERE.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for raw in doc.get("cases", []):
            yield Case(str(path.relative_to(HERE)), raw["note"], raw)


def out_of_scope(case: Case) -> str | None:
    """Why the case is outside what the language means to support, or None."""
    raw = case.raw
    if " with " in f" {raw.get('query', '')} ":
        return "`with` in the query"
    modules = raw.get("modules") or []
    if any("http.send" in m for m in modules):
        return "http.send"
    functions = _functions(modules)
    for text in modules:
        package = _package(text)
        for name, count in _calls(text):
            builtin = BUILTINS.get(name)
            if builtin is not None and count == builtin.arity + 1:
                return f"output-argument form of `{name}`"
            qualified = name[5:] if name.startswith("data.") else f"{package}.{name}"
            if functions.get(qualified, -2) + 1 == count:
                return f"output-argument form of `{name}`"
    return None


def _package(text: str) -> str:
    match = re.search(r"^package\s+([\w.]+)", text, re.MULTILINE)
    return match.group(1) if match else ""


def _functions(modules: list[str]) -> dict[str, int]:
    """`package.name` → arity of the functions the modules define."""
    found: dict[str, int] = {}
    for text in modules:
        try:
            module = parse_module(text)
        except PolicyError:
            continue
        for rule in module.rules:
            if rule.kind == "function":
                found[f"{module.package_name}.{rule.name}"] = len(rule.args)
    return found


_CALL = re.compile(r"(?<![\w.])([a-z_][\w]*(?:\.[a-z_][\w]*)*)\(")


def _calls(text: str) -> Iterator[tuple[str, int]]:
    """(builtin name, number of arguments) of the calls in `text`, by bracket counting
    (the cases are small; strings with brackets inside are rare and only make a call
    look in scope)."""
    for match in _CALL.finditer(text):
        depth, args, i, empty = 0, 1, match.end(), True
        while i < len(text):
            c = text[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif c == "," and depth == 0:
                args += 1
            elif c == '"':
                j = text.find('"', i + 1)
                while j != -1 and text[j - 1] == "\\":
                    j = text.find('"', j + 1)
                i = j if j != -1 else len(text)
            if not c.isspace():
                empty = False
            i += 1
        yield match.group(1), 0 if empty else args


@attrs.frozen
class Outcome:
    passed: bool
    detail: str


def run(case: Case) -> Outcome:
    raw = case.raw
    query = raw["query"]
    texts = list(raw.get("modules") or [])
    document = _DOCUMENT_QUERY.match(query)
    if document is None:
        texts.append(f"package __conformance__\n\nq if {{\n\t{query}\n}}\n")
    want_error = raw.get("want_error_code")
    try:
        modules = [parse_module(t, f"mod{i}.rego") for i, t in enumerate(texts)]
        policy = compile_policy(modules)
    except (PolicyError, PolicyErrors) as exc:
        if want_error:
            return Outcome(True, f"error at load, as OPA's {want_error}")
        return Outcome(False, f"load error: {exc}")
    input = raw.get("input", raw.get("input_term"))
    data = raw.get("data") or {}
    try:
        if document is not None:
            path = document.group(1).split(".")[1:]
            try:
                value = policy.document(path, input, data)
                got: list[dict[str, Any]] = [{"x": to_json(value)}]
            except UNDEFINED_ERRORS:
                got = []
        else:
            try:
                policy.document(["__conformance__", "q"], input, data)
                got = [{}]
            except UNDEFINED_ERRORS:
                got = []
    except Exception as exc:  # a rule failing at run time: the error OPA names, or not
        if want_error:
            return Outcome(True, f"error at run time, as OPA's {want_error}")
        return Outcome(False, f"run-time error: {type(exc).__name__}: {exc}")
    if want_error:
        return Outcome(False, f"no error; OPA raises {want_error}")
    want = raw.get("want_result")
    if want is None:
        return Outcome(False, "case names no result")
    if _same(got, want, bool(raw.get("sort_bindings"))):
        return Outcome(True, "same result")
    return Outcome(False, f"got {got!r}, OPA {want!r}")


def _same(got: Any, want: Any, sort: bool) -> bool:
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return False
        if sort:
            try:
                return all(_same(g, w, sort) for g, w in zip(sorted(got, key=repr), sorted(want, key=repr)))
            except TypeError:
                return False
        return all(_same(g, w, sort) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(_same(got[k], want[k], sort) for k in want)
    if type(want) is bool or type(got) is bool:
        return type(want) is type(got) and want == got
    return bool(want == got)
