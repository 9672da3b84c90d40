"""wire.checks.strict_loads: the fast parser (jiter) never accepts what the reference parser
(Python's json with the duplicate-key hook) refuses, and gives the same data when both accept.

The texts are made to sit on the edges: keys written twice (also once escaped, ``\\u0061``),
whitespace around colons, ``":`` inside strings, NaN / Infinity / 1e999, lone surrogates,
control characters, big integers, deep nesting. The last test shows the property test
catches a fast path without its duplicate-key or NaN guard.
"""

from __future__ import annotations

import json

import jiter
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire import checks
from wire.checks import WireRefused, strict_loads

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KEYS = st.sampled_from(['"a"', '"b"', '"\\u0061"', '"a\\"":', '""', '"\\ud800"'])
_WS = st.sampled_from(["", " ", "\n", "\t "])
_SCALARS = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "0.1", "1E400",
                     "123456789012345678901234567890", "true", "null", '"x\\":y"', '"\\ud83d"',
                     '"\\u0000"', '"\x01"', '"é"', "01", "1.", "[]", "{}"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=6).map(json.dumps),
)


def _json_like(depth: int = 3) -> st.SearchStrategy[str]:
    """JSON texts, mostly valid, with the tricky spots on purpose."""
    if depth == 0:
        return _SCALARS
    inner = _json_like(depth - 1)
    member = st.tuples(_KEYS, _WS, _WS, inner).map(lambda m: f"{m[0]}{m[1]}:{m[2]}{m[3]}")
    objects = st.lists(member, max_size=4).map(lambda ms: "{" + ",".join(ms) + "}")
    arrays = st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
    return st.one_of(_SCALARS, objects, arrays)


def _outcome(parse, raw: bytes):
    try:
        return "ok", parse(raw)
    except WireRefused as exc:
        return "refused", exc.reason
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not_json", None


def _same(a, b) -> bool:
    """Equal data, floats by their bits (so -0.0 and 0.0 differ; inf equals inf)."""
    return json.dumps(a, allow_nan=True) == json.dumps(b, allow_nan=True) and a == b or (
        a != a and b != b)


def _agrees(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    fast, reference = _outcome(strict_loads, raw), _outcome(checks._strict_python, raw)
    assert fast[0] == reference[0], (text, fast, reference)
    if fast[0] == "ok":
        assert _same(fast[1], reference[1]), (text, fast, reference)
    else:
        assert fast[1] == reference[1], (text, fast, reference)


@MANY
@given(_json_like())
def test_the_fast_parser_agrees_with_the_reference(text):
    _agrees(text)


@pytest.mark.parametrize("text", [
    '{"a":1,"a":2}', '{"a" :1,"a":2}', '{"a":1,"\\u0061":2}', '{"x":{"a":1,"b":{"a":0},"a":3}}',
    '{"a":NaN}', '[Infinity]', '{"a":1e999}', '{"a":"\\ud800"}', '"\x1f"', '{"a":"x\\":","b":1}',
])
def test_edge_cases_agree(text):
    _agrees(text)


def test_the_property_test_catches_a_fast_path_without_its_guards(monkeypatch):
    """Take out catch_duplicate_keys, or allow NaN, and the property test above fails."""
    parse = jiter.from_json
    for unsafe in ({"catch_duplicate_keys": False}, {"allow_inf_nan": True}):
        def careless(raw, unsafe=unsafe, **options):
            return parse(raw, **{**options, **unsafe})

        monkeypatch.setattr(checks.jiter, "from_json", careless)
        with pytest.raises(AssertionError):
            settings(max_examples=600, deadline=None, database=None)(
                given(_json_like())(_agrees))()
