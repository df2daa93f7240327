"""The builtins real policies call beyond the core library, with OPA's documented
results: strings.count, object.union_n/filter, units, semver, hashes and HMACs,
base64url, hex, URL query escaping, io.jwt.decode and time."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subguard.lang import compile_policy, parse_module
from subguard.lang.builtins import BUILTINS, BuiltinError
from subguard.lang.values import equal


def call(name: str, *args: Any) -> Any:
    builtin = BUILTINS[name]
    assert builtin.arity == len(args)
    return builtin.fn(*args)


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


TOKEN = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': 'agent-7', 'groups': ['ops']})}.AAEC"
JAN_31 = 1706695872 * 10**9  # 2024-01-31T10:11:12Z

CASES: list[tuple[str, tuple[Any, ...], Any]] = [
    ("strings.count", ("cheese", "e"), 3),
    ("strings.count", ("hello hello", "hello"), 2),
    ("strings.count", ("aaaa", "aa"), 2),  # non-overlapping, as Go's strings.Count
    ("object.union_n", (({"a": 1}, {"b": 2}, {"a": 3}),), {"a": 3, "b": 2}),
    ("object.union_n", (({"a": {"x": 1}}, {"a": {"y": 2}}),), {"a": {"x": 1, "y": 2}}),
    ("object.union_n", ((),), {}),
    ("object.filter", ({"a": 1, "b": 2, "c": 3}, ("a", "c")), {"a": 1, "c": 3}),
    ("units.parse", ("10K",), 10000),
    ("units.parse", ("1Ki",), 1024),
    ("units.parse", ("1500m",), 1.5),
    ("units.parse", ("2M",), 2000000),
    ("units.parse", ("0.5G",), 500000000),
    ("units.parse_bytes", ("10GB",), 10 * 10**9),
    ("units.parse_bytes", ("1KiB",), 1024),
    ("units.parse_bytes", ("4mb",), 4 * 10**6),
    ("units.parse_bytes", ("100",), 100),
    ("semver.is_valid", ("1.2.3-rc.1+build.5",), True),
    ("semver.is_valid", ("1.2",), False),
    ("semver.is_valid", ("01.2.3",), False),
    ("semver.is_valid", (7,), False),
    ("semver.compare", ("1.0.0", "1.0.0"), 0),
    ("semver.compare", ("1.0.0-alpha", "1.0.0"), -1),
    ("semver.compare", ("1.0.0-alpha.1", "1.0.0-alpha.beta"), -1),
    ("semver.compare", ("1.0.0-beta.11", "1.0.0-beta.2"), 1),
    ("semver.compare", ("2.0.0", "1.10.0"), 1),
    ("semver.compare", ("1.0.0+a", "1.0.0+b"), 0),
    ("crypto.md5", ("abc",), "900150983cd24fb0d6963f7d28e17f72"),
    ("crypto.sha1", ("abc",), "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("crypto.sha256", ("abc",), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("crypto.hmac.sha256", ("message", "key"), "6e9ef29b75fffc5b7abae527d58fdadb2fe42e7219011976917343065f58ed4a"),
    ("crypto.hmac.equal", ("abc", "abc"), True),
    ("crypto.hmac.equal", ("abc", "abd"), False),
    ("base64url.encode", ("a?>",), "YT8-"),
    ("base64url.encode_no_pad", ("a",), "YQ"),
    ("base64url.decode", ("YT8-",), "a?>"),
    ("base64url.decode", ("YQ",), "a"),
    ("hex.encode", ("hi",), "6869"),
    ("hex.decode", ("6869",), "hi"),
    ("urlquery.encode", ("a b&c=d",), "a+b%26c%3Dd"),
    ("urlquery.decode", ("a+b%26c",), "a b&c"),
    ("io.jwt.decode", (TOKEN,), ({"alg": "HS256", "typ": "JWT"}, {"sub": "agent-7", "groups": ("ops",)}, "000102")),
    ("time.parse_rfc3339_ns", ("2017-06-02T19:00:00-07:00",), 1496455200 * 10**9),
    ("time.parse_rfc3339_ns", ("1985-04-12T23:20:50.52Z",), 482196050520000000),
    ("time.parse_rfc3339_ns", ("1970-01-01T00:00:00.000000001Z",), 1),
    ("time.parse_duration_ns", ("1h30m",), 5400 * 10**9),
    ("time.parse_duration_ns", ("-1.5s",), -1500000000),
    ("time.parse_duration_ns", ("300ms",), 300000000),
    ("time.parse_duration_ns", ("1us",), 1000),
    ("time.date", (JAN_31,), (2024, 1, 31)),
    ("time.date", ((JAN_31, "America/New_York"),), (2024, 1, 31)),
    ("time.date", ((JAN_31 - 11 * 3600 * 10**9, "America/New_York"),), (2024, 1, 30)),
    ("time.clock", (JAN_31,), (10, 11, 12)),
    ("time.weekday", (JAN_31,), "Wednesday"),
    ("time.add_date", (JAN_31, 0, 1, 0), 1709374272 * 10**9),  # Feb 31 rolls over to Mar 2
    ("time.add_date", (JAN_31, 1, 0, 1), 1738404672 * 10**9),  # 2025-02-01
]


@pytest.mark.parametrize(("name", "args", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_builtin(name: str, args: tuple[Any, ...], expected: Any) -> None:
    assert equal(call(name, *args), expected)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("strings.count", (1, "a")),
        ("object.union_n", ({"a": 1},)),
        ("object.union_n", ((1,),)),
        ("units.parse", ("10 K",)),
        ("units.parse", ("10Q",)),
        ("units.parse", ("K",)),
        ("units.parse_bytes", ("1XB",)),
        ("semver.compare", ("1.2", "1.2.3")),
        ("base64url.decode", ("***",)),
        ("hex.decode", ("zz",)),
        ("io.jwt.decode", ("not-a-token",)),
        ("io.jwt.decode", ("a.b",)),
        ("io.jwt.decode", (f"{_b64({'alg': 'x'})}.bm90LWpzb24.AA",)),
        ("io.jwt.decode", (f"{_b64({'alg': 'x'})}.{base64.urlsafe_b64encode(b'[' * 100000).decode()}.AA",)),
        ("time.parse_rfc3339_ns", ("2017-06-02 19:00:00",)),
        ("time.parse_rfc3339_ns", ("2017-02-30T00:00:00Z",)),
        ("time.parse_duration_ns", ("1d",)),
        ("time.parse_duration_ns", ("",)),
        ("time.date", ((1, "Mars/Olympus_Mons"),)),
        ("time.add_date", (0, 10000, 0, 0)),
    ],
)
def test_bad_arguments_are_builtin_errors(name: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(BuiltinError, match=f"`{name}`"):
        call(name, *args)


@given(st.integers(0, 2**37).map(lambda s: s * 10**9 + 123))
def test_rfc3339_round_trip_through_date_and_clock(ns: int) -> None:
    y, mo, d = call("time.date", ns)
    h, mi, s = call("time.clock", ns)
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.000000123Z"
    assert call("time.parse_rfc3339_ns", text) == ns


@given(st.text(), st.text(min_size=1))
def test_strings_count_agrees_with_splitting(search: str, sub: str) -> None:
    assert call("strings.count", search, sub) == len(search.split(sub)) - 1


def test_builtins_are_callable_from_policy_text() -> None:
    source = (
        "package p\n\n"
        'x := [strings.count("cheese", "e"), units.parse_bytes("1KiB"), semver.compare("1.2.3", "1.10.0")]\n'
        'claims := io.jwt.decode(input.token)[1]\n'
    )
    values = compile_policy([parse_module(source)]).evaluate_all({"token": TOKEN}, {})
    assert values["p.x"] == (3, 1024, -1)
    assert values["p.claims"]["sub"] == "agent-7"
