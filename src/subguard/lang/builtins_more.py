"""More builtins real policies call, with OPA's names and semantics: counting in strings,
merging objects, units, semantic versions, hashes and HMACs, URL-safe base64, hex, URL
query escaping, JWT decoding (no verification) and time. They register into `builtins`'
registry when that module loads."""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import hashlib
import hmac
import json
import re
import urllib.parse
from typing import Any

from subguard.lang.builtins import BuiltinError, _bad, _builtin, _int, _merge, _num, _object, _str
from subguard.lang.values import from_json

__all__: list[str] = []


# --- strings and objects ------------------------------------------------------------------


@_builtin("strings.count", ("string", "string"), "number")
def _strings_count(search: Any, substring: Any) -> int:
    # Go's strings.Count: non-overlapping; an empty substring counts code points + 1
    return _str("strings.count", 1, search).count(_str("strings.count", 2, substring))


@_builtin("object.union_n", ("any",), "object<any>")
def _object_union_n(objects: Any) -> dict[Any, Any]:
    if not isinstance(objects, tuple):
        raise _bad("object.union_n", 1, "array", objects)
    merged: dict[Any, Any] = {}
    for item in objects:
        merged = _merge(merged, _object("object.union_n", 1, item))
    return merged


@_builtin("object.filter", ("any", "any"), "object<any>")
def _object_filter(obj: Any, keys: Any) -> dict[Any, Any]:
    source = _object("object.filter", 1, obj)
    if not isinstance(keys, tuple | frozenset | dict):
        raise _bad("object.filter", 2, "array, set or object", keys)
    keep = set(keys)
    return {k: v for k, v in source.items() if k in keep}


# --- units --------------------------------------------------------------------------------

_SI = {
    "": 1,
    "m": 10**-3,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "g": 10**9,
    "G": 10**9,
    "t": 10**12,
    "T": 10**12,
    "p": 10**15,
    "P": 10**15,
    "e": 10**18,
    "E": 10**18,
}
_IEC = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50, "ei": 2**60}
_AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _amount_and_unit(name: str, text: str) -> tuple[str, str]:
    stripped = text.strip('"')
    if " " in stripped:
        raise BuiltinError(f"`{name}`: spaces not allowed in resource strings")
    match = _AMOUNT.match(stripped)
    if match is None:
        raise BuiltinError(f"`{name}`: no amount provided in `{text}`")
    unit = stripped[match.end() :]
    return match.group(0), unit


def _number(amount: str, factor: int | float) -> int | float:
    value = (
        float(amount) * factor
        if ("." in amount or "e" in amount.lower() or isinstance(factor, float))
        else int(amount) * factor
    )
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


@_builtin("units.parse", ("string",), "number")
def _units_parse(x: Any) -> int | float:
    """`10K` = 10000, `1Ki` = 1024, `1500m` = 1.5: SI (m is milli, M mega) and IEC."""
    amount, unit = _amount_and_unit("units.parse", _str("units.parse", 1, x))
    if unit in _SI:
        return _number(amount, _SI[unit])
    if unit.lower() in _IEC:
        return _number(amount, _IEC[unit.lower()])
    raise BuiltinError(f"`units.parse`: unknown unit `{unit}`")


@_builtin("units.parse_bytes", ("string",), "number")
def _units_parse_bytes(x: Any) -> int:
    """`10GB`, `5K`, `4mb`, `1KiB` as a whole number of bytes (units ignore case)."""
    amount, unit = _amount_and_unit("units.parse_bytes", _str("units.parse_bytes", 1, x))
    unit = unit.lower()
    if unit.endswith("b"):
        unit = unit[:-1]
    factors = {
        "": 1,
        "k": 10**3,
        "m": 10**6,
        "g": 10**9,
        "t": 10**12,
        "p": 10**15,
        "e": 10**18,
        **_IEC,
    }
    if unit not in factors:
        raise BuiltinError(f"`units.parse_bytes`: unknown unit `{unit}`")
    return (
        int(float(amount) * factors[unit])
        if "." in amount or "e" in amount.lower()
        else int(amount) * factors[unit]
    )


# --- semantic versions --------------------------------------------------------------------

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def _version(name: str, pos: int, x: Any) -> tuple[int, int, int, tuple[str, ...]]:
    match = _SEMVER.fullmatch(_str(name, pos, x))
    if match is None:
        raise BuiltinError(f"`{name}`: operand {pos}: string `{x}` is not a valid SemVer")
    major, minor, patch, pre, _build = match.groups()
    return int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else ()


def _pre_key(pre: tuple[str, ...]) -> tuple[Any, ...]:
    # a version without a pre-release sorts after any with one; numeric identifiers
    # sort below alphanumeric ones, and numerically among themselves
    if not pre:
        return (1,)
    return (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre))


@_builtin("semver.is_valid", ("any",), "boolean")
def _semver_is_valid(x: Any) -> bool:
    return type(x) is str and _SEMVER.fullmatch(x) is not None


@_builtin("semver.compare", ("string", "string"), "number")
def _semver_compare(a: Any, b: Any) -> int:
    va, vb = _version("semver.compare", 1, a), _version("semver.compare", 2, b)
    ka, kb = (*va[:3], _pre_key(va[3])), (*vb[:3], _pre_key(vb[3]))
    return (ka > kb) - (ka < kb)


# --- hashes, encodings --------------------------------------------------------------------


def _hasher(name: str, algorithm: str) -> None:
    @_builtin(name, ("string",), "string")
    def digest(x: Any) -> str:
        return hashlib.new(algorithm, _str(name, 1, x).encode()).hexdigest()


for _name, _algorithm in (
    ("crypto.md5", "md5"),
    ("crypto.sha1", "sha1"),
    ("crypto.sha256", "sha256"),
):
    _hasher(_name, _algorithm)


def _hmac(name: str, algorithm: str) -> None:
    @_builtin(name, ("string", "string"), "string")
    def mac(x: Any, key: Any) -> str:
        return hmac.new(
            _str(name, 2, key).encode(), _str(name, 1, x).encode(), algorithm
        ).hexdigest()


for _algorithm in ("md5", "sha1", "sha256", "sha512"):
    _hmac(f"crypto.hmac.{_algorithm}", _algorithm)


@_builtin("crypto.hmac.equal", ("string", "string"), "boolean")
def _hmac_equal(a: Any, b: Any) -> bool:
    return hmac.compare_digest(
        _str("crypto.hmac.equal", 1, a).encode(), _str("crypto.hmac.equal", 2, b).encode()
    )


_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _b64url_decode(name: str, text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise BuiltinError(f"`{name}`: illegal base64 data")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BuiltinError(f"`{name}`: {exc}") from None


@_builtin("base64url.encode", ("string",), "string")
def _base64url_encode(x: Any) -> str:
    return base64.urlsafe_b64encode(_str("base64url.encode", 1, x).encode()).decode("ascii")


@_builtin("base64url.encode_no_pad", ("string",), "string")
def _base64url_encode_no_pad(x: Any) -> str:
    return _base64url_encode(x).rstrip("=")


@_builtin("base64url.decode", ("string",), "string")
def _base64url_decode(x: Any) -> str:
    try:
        return _b64url_decode("base64url.decode", _str("base64url.decode", 1, x)).decode()
    except UnicodeDecodeError as exc:
        raise BuiltinError(f"`base64url.decode`: {exc}") from None


@_builtin("hex.encode", ("string",), "string")
def _hex_encode(x: Any) -> str:
    return _str("hex.encode", 1, x).encode().hex()


@_builtin("hex.decode", ("string",), "string")
def _hex_decode(x: Any) -> str:
    try:
        return bytes.fromhex(_str("hex.decode", 1, x)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BuiltinError(f"`hex.decode`: {exc}") from None


@_builtin("urlquery.encode", ("string",), "string")
def _urlquery_encode(x: Any) -> str:
    return urllib.parse.quote_plus(_str("urlquery.encode", 1, x))


@_builtin("urlquery.decode", ("string",), "string")
def _urlquery_decode(x: Any) -> str:
    return urllib.parse.unquote_plus(_str("urlquery.decode", 1, x), errors="strict")


@_builtin("io.jwt.decode", ("string",), "array<any>")
def _jwt_decode(token: Any) -> tuple[Any, Any, str]:
    """`[header, payload, signature as hex]` of a compact JWS, not verified (as OPA)."""
    parts = _str("io.jwt.decode", 1, token).split(".")
    if len(parts) != 3:
        raise BuiltinError(
            "`io.jwt.decode`: encoded JWT had no period separators"
            if len(parts) == 1
            else "`io.jwt.decode`: encoded JWT must have 3 sections"
        )
    try:
        header = json.loads(_b64url_decode("io.jwt.decode", parts[0]))
        payload = json.loads(_b64url_decode("io.jwt.decode", parts[1]))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BuiltinError(f"`io.jwt.decode`: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise BuiltinError("`io.jwt.decode`: header and payload must be JSON objects")
    if header.get("enc") is not None:
        raise BuiltinError("`io.jwt.decode`: JWT is a JWE object, which is not supported")
    signature = _b64url_decode("io.jwt.decode", parts[2]).hex()
    try:
        return from_json(header), from_json(payload), signature
    except RecursionError:
        raise BuiltinError("`io.jwt.decode`: the token nests too deeply") from None


# --- time -----------------------------------------------------------------------------------

_NS = 10**9
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


@_builtin("time.parse_rfc3339_ns", ("string",), "number")
def _parse_rfc3339_ns(x: Any) -> int:
    match = _RFC3339.fullmatch(_str("time.parse_rfc3339_ns", 1, x))
    if match is None:
        raise BuiltinError(f"`time.parse_rfc3339_ns`: `{x}` is not an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
    except ValueError as exc:
        raise BuiltinError(f"`time.parse_rfc3339_ns`: {exc}") from None
    seconds = calendar.timegm(moment.utctimetuple())
    if not zulu:
        offset = (int(off_h) * 60 + int(off_m)) * 60
        seconds -= offset if sign == "+" else -offset
    return seconds * _NS + int((fraction or "").ljust(9, "0") or 0)


_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": _NS,
    "m": 60 * _NS,
    "h": 3600 * _NS,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


@_builtin("time.parse_duration_ns", ("string",), "number")
def _parse_duration_ns(x: Any) -> int:
    """Go's `time.ParseDuration`: `1h30m`, `-1.5s`, `300ms`."""
    text = _str("time.parse_duration_ns", 1, x)
    sign = -1 if text.startswith("-") else 1
    rest = text.lstrip("+-") if text[:1] in "+-" else text
    if rest == "0":
        return 0
    total, pos = 0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            raise BuiltinError(f"`time.parse_duration_ns`: invalid duration `{text}`")
        amount, unit = match.groups()
        whole, _, frac = amount.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
        pos = match.end()
    if not rest:
        raise BuiltinError(f"`time.parse_duration_ns`: invalid duration `{text}`")
    return sign * total


def _moment(name: str, x: Any) -> dt.datetime:
    """A time in ns since the epoch, or `[ns, zone]` (an IANA zone name, `UTC` or `""`)."""
    zone: dt.tzinfo = dt.UTC
    if isinstance(x, tuple):
        if len(x) != 2:
            raise _bad(name, 1, "number or [number, string]", x)
        x, zone_name = x
        zone_name = _str(name, 1, zone_name)
        if zone_name not in ("", "UTC"):
            try:
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(zone_name)
            except (ValueError, KeyError, OSError) as exc:
                raise BuiltinError(f"`{name}`: unknown time zone `{zone_name}`") from exc
    ns = _int(name, 1, _num(name, 1, x))
    base = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return base.astimezone(zone)


@_builtin("time.date", ("any",), "array<number>")
def _time_date(x: Any) -> tuple[int, int, int]:
    moment = _moment("time.date", x)
    return moment.year, moment.month, moment.day


@_builtin("time.clock", ("any",), "array<number>")
def _time_clock(x: Any) -> tuple[int, int, int]:
    moment = _moment("time.clock", x)
    return moment.hour, moment.minute, moment.second


@_builtin("time.weekday", ("any",), "string")
def _time_weekday(x: Any) -> str:
    return calendar.day_name[_moment("time.weekday", x).weekday()]


@_builtin("time.add_date", ("number", "number", "number", "number"), "number")
def _time_add_date(ns: Any, years: Any, months: Any, days: Any) -> int:
    """Go's `Time.AddDate`: months and days past the end of a unit roll over
    (January 31 plus one month is March 3 or 2)."""
    total = _int("time.add_date", 1, ns)
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=total // 1000)
    month_index = (
        (moment.year + _int("time.add_date", 2, years)) * 12
        + moment.month
        - 1
        + _int("time.add_date", 3, months)
    )
    year, month = divmod(month_index, 12)
    if not 1 <= year <= 9999:
        raise BuiltinError("`time.add_date`: time outside of valid range")
    day_one = moment.replace(year=year, month=month + 1, day=1)
    result = day_one + dt.timedelta(days=moment.day - 1 + _int("time.add_date", 4, days))
    seconds = calendar.timegm(result.utctimetuple())
    return seconds * _NS + total % _NS
