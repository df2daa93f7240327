"""The one-pass decoder of raw input documents gives the general path's answer or none.

For every generated document — of the schema's shape, or with a wrong type, an unknown
field or a null somewhere — the decoder either returns exactly what the type check plus
`conform` would, or defers (`Slow`); it never accepts a document the check refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.engine import INPUT_SCHEMA, Engine, load_policy
from subguard.engine.dataschema import type_errors
from subguard.engine.decode import JsonDecoder, Slow, raw_decoder
from subguard.lang import Type, conform, from_json

DECODE = raw_decoder(INPUT_SCHEMA)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _of(t: Type, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of type `t`, now and then something else (a wrong type, a null)."""
    return st.one_of(_right(t, depth), json_values) if depth else _right(t, depth)


def _right(t: Type, depth: int) -> st.SearchStrategy[Any]:
    kind = t.kind
    base: st.SearchStrategy[Any]
    if kind == "string":
        base = st.text(max_size=4)
    elif kind == "number":
        base = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False))
    elif kind == "boolean":
        base = st.booleans()
    elif kind in ("null", "any"):
        base = json_values
    elif kind in ("set", "array", "object"):
        elem = _of(t.elem or Type("any"), depth + 1) if depth < 4 else json_scalars
        base = (
            st.dictionaries(st.text(max_size=3), elem, max_size=3)
            if kind == "object"
            else st.lists(elem, max_size=3)
        )
    else:
        fields = INPUT_SCHEMA.fields(t)
        if depth >= 4:
            base = st.just({})
        else:
            base = st.fixed_dictionaries(
                {}, optional={k: _of(ft, depth + 1) for k, ft in fields.items()}
            ).flatmap(
                lambda d: st.one_of(
                    st.just(d), st.builds(lambda k: {**d, k: 1}, st.sampled_from(["zz_unknown", "Kind"]))
                )
            )
    return st.one_of(base, st.none()) if t.nullable else base


def _general(doc: Any) -> tuple[str | None, Any]:
    problems = type_errors(doc, INPUT_SCHEMA, INPUT_SCHEMA.root, "input", complete=False)
    if problems:
        return problems[0], None
    return None, conform(from_json(dict(doc)), INPUT_SCHEMA.root, INPUT_SCHEMA)


@SETTINGS
@given(_of(INPUT_SCHEMA.root))
def test_the_decoder_agrees_with_the_type_check_and_conform(doc: Any) -> None:
    problem, want = _general(doc)
    try:
        got = DECODE(doc)
    except Slow:
        return
    assert problem is None
    assert got == want
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_wrong_shapes_are_refused_with_the_general_message() -> None:
    engine = Engine(load_policy_text('package p\nallow if true\n'))
    decision = engine.evaluate({"subject": {"id": "a", "groups": "admins"}})
    assert decision.effect.value == "deny"
    assert [e.code for e in decision.errors] == ["invalid_request"]
    assert decision.errors[0].message.startswith("`input.subject.groups`: expected set<string>")
    decision = engine.evaluate({"subject": {"id": "a", "groups": ["admins"], "x": 1}})
    assert [e.code for e in decision.errors] == ["invalid_request"]
    assert decision.errors[0].message.startswith("`input.subject.x`: is not a field")
    assert engine.evaluate({"subject": {"id": True}}).effect.value == "deny"
    ok = engine.evaluate({"subject": {"id": "a", "groups": ["admins", "admins"]}})
    assert ok.effect.value == "allow"


def load_policy_text(text: str) -> Any:
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    (d / "p.guard").write_text(text)
    return load_policy(d)


# -- JSON text through msgspec ---------------------------------------------------------

JSON_DECODER = JsonDecoder(INPUT_SCHEMA)


@SETTINGS
@given(_of(INPUT_SCHEMA.root), st.booleans())
def test_the_json_decoder_agrees_with_json_loads_and_the_general_path(doc: Any, wrapped: bool) -> None:
    text = json.dumps({"input": doc} if wrapped else doc)
    try:
        got = JSON_DECODER.line(text.encode()) if wrapped else JSON_DECODER.document(text.encode())
    except Slow:
        return
    problem, want = _general(json.loads(text)["input"] if wrapped else json.loads(text))
    assert problem is None
    assert got == want
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize(
    "text",
    [
        b'{"subject": {"groups": "admins"}}',
        b'{"subject": {"groups": ["a"], "x": 1}}',
        b'{"subject": {"id": NaN}}',
        b'{"subject": {"groups": [1], "groups": ["a"]}}',
        b'{"subject": {"groups": ["a"]}, "subject": {"groups": 1}}',
        b'\xef\xbb\xbf{"subject": {}}',
        b'{"session": {"requests": true}}',
        b'{"session": {"requests": 1e400}}',
        b'{"subject": {"id": "\\ud800"}}',
        b"[]",
        b"",
    ],
)
def test_texts_json_reads_differently_or_wrongly_shaped_take_the_general_path(text: bytes) -> None:
    with pytest.raises(Slow):
        JSON_DECODER.document(text)
    with pytest.raises(Slow):
        JSON_DECODER.line(b'{"input": ' + text + b"}")


def test_a_line_holds_only_its_input() -> None:
    with pytest.raises(Slow):
        JSON_DECODER.line(b'{"input": {}, "sql": "DROP TABLE users"}')
    with pytest.raises(Slow):
        JSON_DECODER.line(b'{"sql": "DROP TABLE users"}')
    doc = JSON_DECODER.line(b'{"input": {"subject": {"id": "a", "groups": ["x", "x"], "claims": {"r": [1]}}}}')
    assert doc == {"subject": {"id": "a", "groups": frozenset({"x"}), "claims": {"r": (1,)}}}
