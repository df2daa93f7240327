"""Policy text → AST: the Lark LALR parser, its newline-aware post-lexer, and a
non-recursive transformer to frozen AST nodes (so deep input cannot overflow the stack).

Users never see a Lark type: every failure becomes a located `PolicyError`.

Why one module of ~630 lines: most of it is `_ToAst`, one method per rule of
`grammar/subguard.lark` in the grammar's order, and the post-lexer whose marks the grammar
relies on. A change to the grammar changes the three together; kept side by side, a rule
without its method (or a mark without its rule) is seen in one read.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from subguard.caching import bounded_cache
from subguard.errors import Location, PolicyError
from subguard.lang import ast

__all__ = ["MAX_DEPTH", "MAX_SOURCE_BYTES", "grammar_text", "parse_module", "read_source"]

#: Bracket nesting deeper than this is refused (the later stages recurse over the AST).
MAX_DEPTH = 100
#: A policy file larger than this is refused before it is read whole.
MAX_SOURCE_BYTES = 4 * 1024 * 1024

#: Tokens after which a line may end a literal.
_ENDS_EXPR = frozenset(
    {"NAME", "STRING", "RAW_STRING", "NUMBER", "TRUE", "FALSE", "NULL", "RPAR", "RSQB", "RBRACE"}
)
#: Tokens that continue the previous line when they start the next one.
_CONTINUES = frozenset(
    {
        "RBRACE",
        "RPAR",
        "RSQB",
        "COMMA",
        "COLON",
        "OR_OP",
        "AND_OP",
        "REL_OP",
        "PLUS",
        "MUL_OP",
        "ASSIGN_OP",
        "IF",
        "WITH",
        "AS",
        "IN",
        "COMPR_BAR",
        "ELSE",
    }
)
_KEYWORDS = frozenset(
    {
        "PACKAGE",
        "IMPORT",
        "AS",
        "DEFAULT",
        "IF",
        "CONTAINS",
        "SOME",
        "IN",
        "EVERY",
        "NOT",
        "WITH",
        "TRUE",
        "FALSE",
        "NULL",
        "ELSE",
    }
)
_OPENERS = {"LPAR": "paren", "LSQB": "bracket", "LBRACE": "brace"}
_CLOSERS = frozenset({"RPAR", "RSQB", "RBRACE"})


def grammar_text() -> str:
    """The grammar, from the installed package's data or, in a source checkout, the
    repository's `grammar/` directory (its single source)."""
    packaged = resources.files("subguard.lang").joinpath("grammar", "subguard.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[3] / "grammar" / "subguard.lark"
    return source.read_text(encoding="utf-8")


class _PostLexer:
    """Decides which newlines separate literals, and marks body braces and comprehension
    bars, by tracking the stack of open brackets."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.path = "<policy>"

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        # Decisions about a token can depend on the token after it (`contains(` is a
        # call, not a rule head), so each token is held until the next one arrives.
        held: Token | None = None
        before: Token | None = None
        for tok in self._structure(stream):
            if held is not None:
                if (
                    held.type == "CONTAINS"
                    and tok.type == "LPAR"
                    and (before is None or before.type != "NAME")  # `deny contains (…)` is a head
                ):
                    held = Token.new_borrow_pos("NAME", held.value, held)
                yield held
                before = held
            held = tok
        if held is not None:
            yield held

    def _structure(self, stream: Iterator[Token]) -> Iterator[Token]:
        frames: list[str] = []  # paren | bracket | brace | body | compr
        every_at: list[int] = []  # frame depths at which an `every` awaits its body
        prev: Token | None = None
        pending_nl: Token | None = None
        for tok in stream:
            kind = tok.type
            if kind == "_NL":
                if pending_nl is None:
                    pending_nl = tok
                continue
            if prev is not None and prev.type == "DOT" and kind in _KEYWORDS:
                # After a dot every word is a field name: `input.resource.default`.
                tok = Token.new_borrow_pos("NAME", tok.value, tok)
                kind = "NAME"
            if pending_nl is not None:
                top = frames[-1] if frames else "body"
                if (
                    top in ("body", "compr")
                    and prev is not None
                    and prev.type in _ENDS_EXPR
                    and kind not in _CONTINUES
                ):
                    yield pending_nl
                pending_nl = None

            if kind == "LBRACE":
                if prev is not None and prev.type == "IF":
                    tok = Token.new_borrow_pos("BODY_OPEN", tok.value, tok)
                    frames.append("body")
                elif (
                    every_at
                    and every_at[-1] == len(frames)
                    and prev is not None
                    and prev.type in _ENDS_EXPR
                ):
                    every_at.pop()
                    tok = Token.new_borrow_pos("BODY_OPEN", tok.value, tok)
                    frames.append("body")
                else:
                    frames.append("brace")
            elif kind in _OPENERS:
                frames.append(_OPENERS[kind])
            elif kind in _CLOSERS:
                if frames:
                    frames.pop()
            elif kind == "OR_OP" and frames and frames[-1] in ("bracket", "brace"):
                frames[-1] = "compr"
                tok = Token.new_borrow_pos("COMPR_BAR", tok.value, tok)
            elif kind == "EVERY":
                every_at.append(len(frames))
            if len(frames) > MAX_DEPTH:
                raise PolicyError(
                    "too_deep",
                    f"brackets nest deeper than {MAX_DEPTH} levels",
                    _tok_loc(self.path, tok),
                )
            prev = tok
            yield tok


def _loc(path: str, meta: Any) -> ast.Location:
    if getattr(meta, "empty", True):
        return ast.Location(path, 0, 0)
    return ast.Location(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_loc(path: str, tok: Token) -> ast.Location:
    return ast.Location(
        path, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0
    )


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):  # type: ignore[type-arg]
    """Builds AST nodes bottom-up, without recursion, so deep input cannot overflow."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.path = "<policy>"
        self.fresh = 0  # numbers the variables `some` patterns iterate

    # module
    def start(self, meta: Any, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def package(self, meta: Any, items: list[Any]) -> tuple[str, tuple[str, ...], ast.Location]:
        return ("package", items[0], _loc(self.path, meta))

    def dotted(self, meta: Any, items: list[Token]) -> tuple[str, ...]:
        return tuple(str(t) for t in items)

    def import_(self, meta: Any, items: list[Any]) -> ast.Import:
        ref, alias = items[0], items[1] if len(items) > 1 else None
        if isinstance(ref, ast.Var):
            ref = ast.Ref(ref, (), loc=ref.loc)
        return ast.Import(ref, str(alias) if alias is not None else None, loc=_loc(self.path, meta))

    # rules
    def _rule(
        self, meta: Any, kind: ast.RuleKind, name: Token, value: Any, body: Any, **kw: Any
    ) -> ast.Rule:
        literals, one_line = body if body is not None else ((), False)
        return ast.Rule(
            kind, str(name), value, literals, one_line=one_line, loc=_loc(self.path, meta), **kw
        )

    def default_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        name, _, value = items
        return self._rule(meta, ast.DEFAULT, name, value, None)

    def head_name(self, meta: Any, items: list[Token]) -> Token:
        return Token.new_borrow_pos("NAME", ".".join(str(t) for t in items), items[0])

    def default_function(self, meta: Any, items: list[Any]) -> ast.Rule:
        name, *args, _, value = items
        params = tuple(a for a in args if a is not None)
        return self._rule(meta, ast.DEFAULT, name, value, None, args=params)

    def boolean_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        items, elses = _split_elses(items)
        name, body = items
        true = ast.Scalar(True, loc=_tok_loc(self.path, name))
        return self._rule(meta, ast.COMPLETE, name, true, body, boolean=True, elses=elses)

    def complete_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        items, elses = _split_elses(items)
        name, _, value, body = items
        return self._rule(meta, ast.COMPLETE, name, value, body, elses=elses)

    def else_(self, meta: Any, items: list[Any]) -> ast.Else:
        _op, value, body = items
        loc = _loc(self.path, meta)
        literals = body[0] if body is not None else ()
        return ast.Else(
            value if value is not None else ast.Scalar(True, loc=loc), literals, loc=loc
        )

    def set_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        name, value, body = items
        return self._rule(meta, ast.SET, name, value, body)

    def object_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        name, key, _, value, body = items
        return self._rule(meta, ast.OBJECT, name, value, body, key=key)

    def function_rule(self, meta: Any, items: list[Any]) -> ast.Rule:
        items, elses = _split_elses(items)
        name, *args, op, value, body = items
        boolean = op is None
        if boolean:
            value = ast.Scalar(True, loc=_tok_loc(self.path, name))
        params = tuple(a for a in args if a is not None)
        return self._rule(
            meta, ast.FUNCTION, name, value, body, args=params, boolean=boolean, elses=elses
        )

    def rule_body(self, meta: Any, items: list[Any]) -> tuple[tuple[Any, ...], bool]:
        if len(items) == 1:
            return _flatten([items[0]]), True
        return items[1], False

    def body(self, meta: Any, items: list[Any]) -> tuple[Any, ...]:
        return _flatten(i for i in items if not isinstance(i, Token))

    # literals
    def _withs(self, items: list[Any]) -> tuple[ast.With, ...]:
        return tuple(i for i in items if isinstance(i, ast.With))

    def not_literal(self, meta: Any, items: list[Any]) -> ast.NotLiteral:
        return ast.NotLiteral(items[0], self._withs(items[1:]), loc=_loc(self.path, meta))

    def not_assign(self, meta: Any, items: list[Any]) -> ast.NotLiteral:
        left, op, right, *rest = items
        loc = _loc(self.path, meta)
        if str(op) == ":=":
            raise PolicyError(
                "parse_error",
                "`:=` cannot be negated: a variable declared under `not` is never used",
                loc,
            )
        return ast.NotLiteral(ast.BinOp("==", left, right, loc=loc), self._withs(rest), loc=loc)

    def names(self, meta: Any, items: list[Token]) -> tuple[str, ...]:
        return tuple(str(t) for t in items)

    def some_terms(self, meta: Any, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def some_decl(self, meta: Any, items: list[Any]) -> ast.SomeDecl:
        names = []
        for term in items[0]:
            if not isinstance(term, ast.Var):
                raise PolicyError(
                    "parse_error",
                    "`some` declares variables: write `some x` or `some x in xs`",
                    term.loc,
                )
            names.append(term.name)
        return ast.SomeDecl(tuple(names), loc=_loc(self.path, meta))

    def some_in(self, meta: Any, items: list[Any]) -> ast.SomeIn | tuple[Any, ...]:
        terms, collection, *rest = items
        loc = _loc(self.path, meta)
        if len(terms) > 2:
            raise PolicyError("parse_error", "`in` takes one value or a key and a value", loc)
        # a constant or a pattern (`some {"a": x} in xs`, `some "k", v in obj`) iterates
        # a fresh variable that the pattern must then match
        names: list[str] = []
        matches: list[ast.Assign] = []
        for term in terms:
            if isinstance(term, ast.Var):
                names.append(term.name)
                continue
            fresh = f"__some{self.fresh}__"
            self.fresh += 1
            names.append(fresh)
            matches.append(ast.Assign("=", term, ast.Var(fresh, loc=term.loc), loc=term.loc))
        key, value = (names[0], names[1]) if len(names) == 2 else (None, names[0])
        some = ast.SomeIn(key, value, collection, loc=loc, withs=self._withs(rest))
        return (some, *matches) if matches else some

    def every(self, meta: Any, items: list[Any]) -> ast.Every:
        names, domain, _open, body = items
        key, value = self._key_value(meta, names)
        return ast.Every(key, value, domain, body, loc=_loc(self.path, meta))

    def _key_value(self, meta: Any, names: tuple[str, ...]) -> tuple[str | None, str]:
        if len(names) > 2:
            loc = _loc(self.path, meta)
            raise PolicyError(
                "parse_error",
                "`in` takes one value or a key and a value",
                loc,
            )
        return (names[0], names[1]) if len(names) == 2 else (None, names[0])

    def assign_literal(self, meta: Any, items: list[Any]) -> ast.Assign:
        target, op, value, *rest = items
        return ast.Assign(str(op), target, value, self._withs(rest), loc=_loc(self.path, meta))

    def expr_literal(self, meta: Any, items: list[Any]) -> ast.ExprLiteral:
        return ast.ExprLiteral(items[0], self._withs(items[1:]), loc=_loc(self.path, meta))

    def with_(self, meta: Any, items: list[Any]) -> ast.With:
        target, value = items
        if isinstance(target, ast.Var):
            target = ast.Ref(target, (), loc=target.loc)
        return ast.With(target, value, loc=_loc(self.path, meta))

    # expressions
    def member(self, meta: Any, items: list[Any]) -> ast.Member:
        return ast.Member(items[0], items[1], loc=_loc(self.path, meta))

    def member_kv(self, meta: Any, items: list[Any]) -> ast.Member:
        key, element, collection = items
        return ast.Member(element, collection, loc=_loc(self.path, meta), key=key)

    def deref(self, meta: Any, items: list[Any]) -> ast.Deref:
        base, *path = items
        return ast.Deref(base, tuple(path), loc=_loc(self.path, meta))

    def binop(self, meta: Any, items: list[Any]) -> ast.BinOp:
        left, op, right = items
        return ast.BinOp(str(op), left, right, loc=_loc(self.path, meta))

    def neg(self, meta: Any, items: list[Any]) -> ast.Expr:
        operand = items[-1]
        loc = _loc(self.path, meta)
        if (
            isinstance(operand, ast.Scalar)
            and isinstance(operand.value, int | float)
            and not isinstance(operand.value, bool)
        ):
            return ast.Scalar(-operand.value, loc=loc)
        return ast.Neg(operand, loc=loc)

    def array(self, meta: Any, items: list[Any]) -> ast.Array:
        return ast.Array(tuple(i for i in items if i is not None), loc=_loc(self.path, meta))

    def empty_object(self, meta: Any, items: list[Any]) -> ast.Object:
        return ast.Object((), loc=_loc(self.path, meta))

    def set_(self, meta: Any, items: list[Any]) -> ast.SetLit:
        return ast.SetLit(tuple(items), loc=_loc(self.path, meta))

    def object(self, meta: Any, items: list[Any]) -> ast.Object:
        return ast.Object(tuple(items), loc=_loc(self.path, meta))

    def pair(self, meta: Any, items: list[Any]) -> tuple[Any, Any]:
        return (items[0], items[1])

    def array_compr(self, meta: Any, items: list[Any]) -> ast.ArrayCompr:
        return ast.ArrayCompr(items[0], items[2], loc=_loc(self.path, meta))

    def set_compr(self, meta: Any, items: list[Any]) -> ast.SetCompr:
        return ast.SetCompr(items[0], items[2], loc=_loc(self.path, meta))

    def object_compr(self, meta: Any, items: list[Any]) -> ast.ObjectCompr:
        (key, value), _bar, body = items
        return ast.ObjectCompr(key, value, body, loc=_loc(self.path, meta))

    def ref(self, meta: Any, items: list[Any]) -> ast.Var | ast.Ref:
        head = items[0]
        var = ast.Var(str(head), loc=_tok_loc(self.path, head))
        if len(items) == 1:
            return var
        return ast.Ref(var, tuple(items[1:]), loc=_loc(self.path, meta))

    def dot(self, meta: Any, items: list[Token]) -> ast.Scalar:
        return ast.Scalar(str(items[0]), loc=_tok_loc(self.path, items[0]))

    def index(self, meta: Any, items: list[Any]) -> Any:
        return items[0]

    def call(self, meta: Any, items: list[Any]) -> ast.Expr:
        target, *args = items
        loc = _loc(self.path, meta)
        args = [a for a in args if a is not None]
        name = target.name if isinstance(target, ast.Var) else target.dotted()
        if name is None:
            raise PolicyError("parse_error", "only a function name can be called", loc)
        if name == "set" and not args:
            return ast.SetLit((), loc=loc)
        return ast.Call(name, tuple(args), loc=loc)

    # scalars
    def string(self, meta: Any, items: list[Token]) -> ast.Scalar:
        return ast.Scalar(json.loads(items[0]), loc=_loc(self.path, meta))

    def raw_string(self, meta: Any, items: list[Token]) -> ast.Scalar:
        return ast.Scalar(str(items[0])[1:-1], loc=_loc(self.path, meta))

    def number(self, meta: Any, items: list[Token]) -> ast.Scalar:
        return ast.Scalar(_number(str(items[0])), loc=_loc(self.path, meta))

    def true(self, meta: Any, items: list[Any]) -> ast.Scalar:
        return ast.Scalar(True, loc=_loc(self.path, meta))

    def false(self, meta: Any, items: list[Any]) -> ast.Scalar:
        return ast.Scalar(False, loc=_loc(self.path, meta))

    def null(self, meta: Any, items: list[Any]) -> ast.Scalar:
        return ast.Scalar(None, loc=_loc(self.path, meta))


#: Integral literals beyond a float's exact range are kept exact (as OPA keeps
#: `1e30 + 1`), up to this many digits.
_EXACT_DIGITS = 1000


def _number(text: str) -> int | float:
    if not any(c in text for c in ".eE"):
        return int(text)
    value = float(text)
    if abs(value) >= 2**53:
        exact = decimal.Decimal(text)
        if exact.adjusted() < _EXACT_DIGITS and exact == exact.to_integral_value():
            return int(exact)
    return value


def _split_elses(items: list[Any]) -> tuple[list[Any], tuple[ast.Else, ...]]:
    """A rule's items before its `else` clauses, and the clauses."""
    cut = len(items)
    while cut and isinstance(items[cut - 1], ast.Else):
        cut -= 1
    return items[:cut], tuple(items[cut:])


def _flatten(items: Any) -> tuple[Any, ...]:
    """Body literals, with the several literals one `some` pattern becomes spliced in."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return tuple(out)


def _cache_file(grammar: str) -> str | bool:
    """Where Lark keeps its analysed grammar between processes: a directory only this
    user can write (Lark's default is a shared temporary directory, and the cache is a
    pickle), named by the grammar's and Lark's versions. No cache if there is none."""
    directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "subguard"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o022:
            return False
    except OSError:
        return False
    digest = hashlib.sha256(f"{lark.__version__}\0{grammar}".encode()).hexdigest()[:24]
    return str(directory / f"grammar-{digest}.lark")


class _Parser:
    """One Lark parser, its post-lexer and transformer, reused for every parse."""

    def __init__(self) -> None:
        self.postlex = _PostLexer()
        self.transformer = _ToAst()
        self.comments: list[tuple[int, str]] = []
        grammar = grammar_text()
        self.lark = lark.Lark(
            grammar,
            parser="lalr",
            lexer="basic",
            strict=True,
            propagate_positions=True,
            maybe_placeholders=True,
            postlex=self.postlex,
            lexer_callbacks={"COMMENT": self._comment},
            cache=_cache_file(grammar),
        )

    def _comment(self, tok: Token) -> None:
        self.comments.append((tok.line or 0, str(tok)))

    def parse(self, text: str, path: str) -> tuple[Any, list[tuple[int, str]]]:
        self.postlex.path = path
        self.transformer.path = path
        self.transformer.fresh = 0
        self.comments = []
        tree = self.lark.parse(text)
        return self.transformer.transform(tree), self.comments


@bounded_cache(
    1,
    justified_by="RESULTS.md, Policy evaluation, 'Compile time': building the Lark parser takes ~40 ms, "
    "about three times a 20-rule policy's whole load; one per process",
)
def _parser() -> _Parser:
    return _Parser()


_TOKEN_WORDS = {
    "_NL": "end of line",
    "$END": "end of file",
    "BODY_OPEN": "`{`",
    "COMPR_BAR": "`|`",
}


def _describe(tok: Any) -> str:
    if isinstance(tok, Token):
        if tok.type in _TOKEN_WORDS:
            return _TOKEN_WORDS[tok.type]
        return f"`{tok.value}`" if tok.value else tok.type.lower()
    return "end of file"


def _parse_error(err: UnexpectedInput, path: str, text: str) -> PolicyError:
    line, col = getattr(err, "line", 0) or 0, getattr(err, "column", 0) or 0
    hint = None
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        message = f"unexpected character `{char}`"
    elif isinstance(err, UnexpectedEOF):
        message = "unexpected end of file"
    elif isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            message = "unexpected end of file"
        else:
            message = f"unexpected {_describe(tok)}"
            line, col = tok.line or line, tok.column or col
        expected = sorted(err.expected - {"_NL", "SEMICOLON"})
        if expected and len(expected) <= 4:
            hint = "expected " + " or ".join(_expected_word(e) for e in expected)
    else:
        message = "syntax error"
    return PolicyError("parse_error", message, Location(path, line, col), hint=hint)


_PUNCT = {
    "RBRACE": "}",
    "LBRACE": "{",
    "RPAR": ")",
    "LPAR": "(",
    "RSQB": "]",
    "LSQB": "[",
    "COMMA": ",",
    "COLON": ":",
    "DOT": ".",
    "ASSIGN_OP": ":=",
    "IF": "if",
    "IN": "in",
}


def _expected_word(name: str) -> str:
    if name in _PUNCT:
        return f"`{_PUNCT[name]}`"
    return name.lower().replace("_", " ")


def read_source(path: Path) -> str:
    """A policy file's text, refused clearly when too large or not UTF-8."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise PolicyError(
                "file_too_large",
                f"policy file is {size:,} bytes; the limit is {MAX_SOURCE_BYTES:,}",
                Location(shown, 1, 1),
            )
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            "io_error", f"cannot read policy file: {exc.strerror or exc}", Location(shown, 0, 0)
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise PolicyError(
            "encoding_error",
            f"policy file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            Location(shown, line, col),
        ) from None


def parse_module(text: str, path: str = "<policy>") -> ast.Module:
    """Parse one policy source into a `Module`; raises `PolicyError` on any bad input."""
    if len(text) > MAX_SOURCE_BYTES:
        raise PolicyError(
            "file_too_large",
            f"policy text is {len(text):,} characters; the limit is {MAX_SOURCE_BYTES:,}",
            Location(path, 1, 1),
        )
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise PolicyError(
            "parse_error", "policy text contains a NUL character", Location(path, line, col)
        )
    parser = _parser()
    try:
        items, comments = parser.parse(text, path)
    except PolicyError:
        raise
    except UnexpectedInput as err:
        raise _parse_error(err, path, text) from None
    except lark.exceptions.VisitError as err:
        if isinstance(err.orig_exc, PolicyError):
            raise err.orig_exc from None
        raise PolicyError("parse_error", "malformed policy", Location(path, 1, 1)) from None
    except RecursionError:
        raise PolicyError("too_deep", "policy nests too deeply", Location(path, 1, 1)) from None
    _, package, package_loc = items[0]
    imports = tuple(i for i in items[1:] if isinstance(i, ast.Import))
    rules = tuple(i for i in items[1:] if isinstance(i, ast.Rule))
    return ast.Module(package, imports, rules, path=path, comments=tuple(comments), loc=package_loc)
