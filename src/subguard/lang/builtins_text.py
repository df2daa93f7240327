"""The text builtins: strings (`sprintf` with Go's verbs included), regular
expressions, globs and network addresses. They register into `builtins`' registry
when that module loads; `builtins` holds the registry, the argument checks and the
other families."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from subguard.caching import bounded_cache
from subguard.lang.budget import charge_text
from subguard.lang.builtins import BuiltinError, _bad, _builtin, _int, _str, _strings
from subguard.lang.regexes import PATTERN_ARGUMENTS, RegexError, compile_regex
from subguard.lang.values import marshal, type_name

__all__ = ["constant_pattern_error", "plain_text"]


# --- strings ------------------------------------------------------------------------------


@_builtin("lower", ("string",), "string")
def _lower(x: Any) -> str:
    return _str("lower", 1, x).lower()


@_builtin("upper", ("string",), "string")
def _upper(x: Any) -> str:
    return _str("upper", 1, x).upper()


@_builtin("trim", ("string", "string"), "string")
def _trim(x: Any, cutset: Any) -> str:
    return _str("trim", 1, x).strip(_str("trim", 2, cutset))


@_builtin("trim_left", ("string", "string"), "string")
def _trim_left(x: Any, cutset: Any) -> str:
    return _str("trim_left", 1, x).lstrip(_str("trim_left", 2, cutset))


@_builtin("trim_right", ("string", "string"), "string")
def _trim_right(x: Any, cutset: Any) -> str:
    return _str("trim_right", 1, x).rstrip(_str("trim_right", 2, cutset))


@_builtin("trim_prefix", ("string", "string"), "string")
def _trim_prefix(x: Any, prefix: Any) -> str:
    return _str("trim_prefix", 1, x).removeprefix(_str("trim_prefix", 2, prefix))


@_builtin("trim_suffix", ("string", "string"), "string")
def _trim_suffix(x: Any, suffix: Any) -> str:
    return _str("trim_suffix", 1, x).removesuffix(_str("trim_suffix", 2, suffix))


@_builtin("trim_space", ("string",), "string")
def _trim_space(x: Any) -> str:
    return _str("trim_space", 1, x).strip()


@_builtin("replace", ("string", "string", "string"), "string")
def _replace(x: Any, old: Any, new: Any) -> str:
    text, before, after = _str("replace", 1, x), _str("replace", 2, old), _str("replace", 3, new)
    if len(after) > len(before):
        # the result's size, before building it (`replace(x, "", y)` multiplies)
        charge_text(
            len(text)
            + (text.count(before) if before else len(text) + 1) * (len(after) - len(before))
        )
    return text.replace(before, after)


@_builtin("split", ("string", "string"), "array<string>")
def _split(x: Any, delimiter: Any) -> tuple[str, ...]:
    text, sep = _str("split", 1, x), _str("split", 2, delimiter)
    if not sep:
        # Go's strings.Split with an empty separator splits into characters
        return tuple(text)
    return tuple(text.split(sep))


@_builtin("concat", ("string", "any"), "string")
def _concat(delimiter: Any, collection: Any) -> str:
    sep = _str("concat", 1, delimiter)
    if type(collection) is str:
        raise _bad("concat", 2, "array or set of strings", collection)
    parts = _strings("concat", 2, collection)
    charge_text(sum(map(len, parts)) + len(sep) * len(parts))
    return sep.join(parts)


@_builtin("startswith", ("string", "string"), "boolean")
def _startswith(search: Any, base: Any) -> bool:
    return _str("startswith", 1, search).startswith(_str("startswith", 2, base))


@_builtin("endswith", ("string", "string"), "boolean")
def _endswith(search: Any, base: Any) -> bool:
    return _str("endswith", 1, search).endswith(_str("endswith", 2, base))


@_builtin("contains", ("string", "string"), "boolean")
def _contains(haystack: Any, needle: Any) -> bool:
    return _str("contains", 2, needle) in _str("contains", 1, haystack)


@_builtin("indexof", ("string", "string"), "number")
def _indexof(haystack: Any, needle: Any) -> int:
    return _str("indexof", 1, haystack).find(_str("indexof", 2, needle))


@_builtin("substring", ("string", "number", "number"), "string")
def _substring(value: Any, offset: Any, length: Any) -> str:
    text = _str("substring", 1, value)
    start = _int("substring", 2, offset)
    size = _int("substring", 3, length)
    if start < 0:
        raise BuiltinError(f"`substring`: offset must not be negative, got `{start}`")
    if size < 0:
        return text[start:]
    return text[start : start + size]


@_builtin("strings.reverse", ("string",), "string")
def _strings_reverse(x: Any) -> str:
    return _str("strings.reverse", 1, x)[::-1]


@_builtin("strings.any_prefix_match", ("any", "any"), "boolean")
def _any_prefix_match(search: Any, base: Any) -> bool:
    searches = _strings("strings.any_prefix_match", 1, search)
    prefixes = tuple(_strings("strings.any_prefix_match", 2, base))
    return any(s.startswith(prefixes) for s in searches)


@_builtin("strings.any_suffix_match", ("any", "any"), "boolean")
def _any_suffix_match(search: Any, base: Any) -> bool:
    searches = _strings("strings.any_suffix_match", 1, search)
    suffixes = tuple(_strings("strings.any_suffix_match", 2, base))
    return any(s.endswith(suffixes) for s in searches)


# sprintf follows Go's fmt, which OPA uses: flags, width, precision and one verb.
_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _plain(value: Any) -> str:
    """How `%v` and `%s` print a value: strings bare, numbers as Rego writes them,
    composites as JSON."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if type(value) is float and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if type(value) is int or type(value) is float:
        return repr(value)
    return marshal(value)


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width:
        return text
    if "-" in flags:
        return text.ljust(int(width))
    return text.rjust(int(width), "0" if "0" in flags and text[:1].isdigit() else " ")


def _wrong(verb: str, value: Any) -> str:
    # Go prints a marker instead of failing; a deny message stays readable either way
    return f"%!{verb}({type_name(value)}={_plain(value)})"


def _format_one(verb: str, flags: str, width: str | None, precision: str | None, value: Any) -> str:
    if verb in "vs":
        text = _plain(value)
        if precision is not None:
            text = text[: int(precision)]
        return _pad(text, flags, width)
    if verb == "q":
        return (
            _wrong(verb, value)
            if type(value) is not str
            else _pad(json.dumps(value, ensure_ascii=False), flags, width)
        )
    if verb == "t":
        return _wrong(verb, value) if type(value) is not bool else _pad(_plain(value), flags, width)
    if verb in "xX" and type(value) is str:
        text = value.encode().hex()
        return _pad(text.upper() if verb == "X" else text, flags, width)
    if type(value) is not int and type(value) is not float:
        return _wrong(verb, value)
    sign = "+" if "+" in flags else " " if " " in flags else ""
    align = "<" if "-" in flags else ""
    zero = "0" if "0" in flags and not align else ""
    if verb in "dxXob":
        if type(value) is float and not value.is_integer():
            return _wrong(verb, value)
        return format(int(value), f"{align}{sign}{zero}{width or ''}{verb}")
    if verb in "feEgG":
        if verb in "gG" and precision is None:
            return _pad(
                _plain(float(value)) if verb == "g" else _plain(float(value)).upper(), flags, width
            )
        digits = f".{precision}" if precision is not None else ""
        return format(float(value), f"{align}{sign}{zero}{width or ''}{digits}{verb}")
    return _wrong(verb, value)


@_builtin("sprintf", ("string", "any"), "string")
def _sprintf(format_: Any, values: Any) -> str:
    template = _str("sprintf", 1, format_)
    if not isinstance(values, tuple):
        raise _bad("sprintf", 2, "array", values)
    args = iter(values)
    used = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal used
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        try:
            value = next(args)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        used += 1
        # a width or precision is padding built before any check could see it: charge it
        charge_text(int(width or 0) + int(precision or 0))
        return _format_one(verb, flags, width, precision, value)

    text = _VERB.sub(substitute, template)
    if used < len(values):
        # Go reports arguments the format did not consume rather than dropping them
        extra = ", ".join(f"{type_name(v)}={_plain(v)}" for v in values[used:])
        text += f"%!(EXTRA {extra})"
    return text


# --- regular expressions and globs --------------------------------------------------------


@bounded_cache(
    1024,
    justified_by="rules/ packs match agent text with constant patterns (rules/sql/*.guard, rules/shell/*.guard); "
    "compiling one costs ~300 µs, matching it ~0.1 µs (timeit, privilege.guard's SET ROLE pattern)",
)
def _regex(pattern: str) -> Any:
    # RE2 (see `regexes`): linear time whatever the pattern
    return compile_regex(pattern)


@_builtin("regex.match", ("string", "string"), "boolean")
def _regex_match(pattern: Any, value: Any) -> bool:
    # OPA's regex.match is unanchored, like Go's MatchString
    compiled = _regex(_str("regex.match", 1, pattern))
    return compiled.search(_str("regex.match", 2, value)) is not None


@_builtin("regex.is_valid", ("any",), "boolean")
def _regex_is_valid(pattern: Any) -> bool:
    if type(pattern) is not str:
        return False
    try:
        _regex(pattern)
    except RegexError:
        return False
    return True


@_builtin("regex.split", ("string", "string"), "array<string>")
def _regex_split(pattern: Any, value: Any) -> tuple[str, ...]:
    compiled = _regex(_str("regex.split", 1, pattern))
    return tuple(compiled.split(_str("regex.split", 2, value)))


@bounded_cache(
    1024,
    justified_by="as `_regex`: a glob is translated to a regex and compiled, per distinct pattern",
)
def _glob(pattern: str, delimiters: tuple[str, ...]) -> Any:
    """Translate a gobwas/glob pattern (what OPA uses) into a regex, compiled by RE2 and
    matched whole.

    `*` matches any run of non-delimiter characters, `**` any run at all, `?` one
    non-delimiter character; `[abc]`, `[!a-z]`, `{a,b}` and `\\` escapes as in gobwas.
    """
    not_delim = f"[^{re.escape(''.join(delimiters))}]" if delimiters else "."
    out: list[str] = []
    depth = 0  # inside {…} alternatives
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError(f"unexpected end of glob `{pattern}`")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append(f"{not_delim}*")
                i += 1
            continue
        if c == "?":
            out.append(not_delim)
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unclosed `[` in glob `{pattern}`")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            parts = []
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    parts.append(f"{re.escape(body[j])}-{re.escape(body[j + 2])}")
                    j += 3
                else:
                    parts.append(re.escape(body[j]))
                    j += 1
            out.append(f"[{'^' if negate else ''}{''.join(parts)}]")
            i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ValueError(f"unclosed `{{` in glob `{pattern}`")
    return compile_regex("".join(out), dot_all=True)


@_builtin("glob.match", ("string", "any", "string"), "boolean")
def _glob_match(pattern: Any, delimiters: Any, match: Any) -> bool:
    glob = _str("glob.match", 1, pattern)
    if delimiters is None:
        delims: tuple[str, ...] = ()
    else:
        if not isinstance(delimiters, tuple):
            raise _bad("glob.match", 2, "array of strings or null", delimiters)
        delims = _strings("glob.match", 2, delimiters) or (".",)
    return _glob(glob, delims).fullmatch(_str("glob.match", 3, match)) is not None


@_builtin("glob.quote_meta", ("string",), "string")
def _glob_quote_meta(pattern: Any) -> str:
    return re.sub(r"([*?\[\]{}\\])", r"\\\1", _str("glob.quote_meta", 1, pattern))


# --- networks -----------------------------------------------------------------------------


@bounded_cache(
    1024,
    justified_by="net.cidr_* builtins parse the same constant networks on every request; parsing is the cost",
)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


@_builtin("net.cidr_contains", ("string", "string"), "boolean")
def _cidr_contains(cidr: Any, cidr_or_ip: Any) -> bool:
    outer = _network(_str("net.cidr_contains", 1, cidr))
    inner = _network(_str("net.cidr_contains", 2, cidr_or_ip))
    if outer.version != inner.version:
        return False
    return inner.subnet_of(outer)  # type: ignore[arg-type]


@_builtin("net.cidr_is_valid", ("any",), "boolean")
def _cidr_is_valid(cidr: Any) -> bool:
    if type(cidr) is not str or "/" not in cidr:
        return False
    try:
        _network(cidr)
    except ValueError:
        return False
    return True


@_builtin("net.cidr_intersects", ("string", "string"), "boolean")
def _cidr_intersects(a: Any, b: Any) -> bool:
    first = _network(_str("net.cidr_intersects", 1, a))
    second = _network(_str("net.cidr_intersects", 2, b))
    return first.overlaps(second)


#: How `sprintf`'s `%v`/`%s` print a value; the compiler calls it directly for
#: constant formats.
plain_text = _plain


def constant_pattern_error(name: str, args: tuple[Any, ...]) -> tuple[int, str] | None:
    """For a call of `name` whose pattern argument is the constant string in `args` (None
    where an argument is not a constant), the position and message of its error when RE2
    rejects it (a compile-time error: the rule could only ever fail)."""
    if name == "glob.match":
        position = 0
    else:
        found = PATTERN_ARGUMENTS.get(name)
        if found is None:
            return None
        position = found
    pattern = args[position] if position < len(args) else None
    if type(pattern) is not str:
        return None
    try:
        if name == "glob.match":
            delimiters = args[1] if len(args) > 1 else None
            _glob(pattern, tuple(delimiters) if isinstance(delimiters, tuple) else (".",))
        else:
            _regex(pattern)
    except RegexError as exc:
        return (
            position,
            f"`{name}`: `{pattern}` is an {exc} (RE2 has no backreferences or lookaround)",
        )
    except ValueError as exc:
        return position, f"`{name}`: {exc}"
    return None
