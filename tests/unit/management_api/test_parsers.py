"""routing/management_api/parsers.py: what may not reach the database is refused, and said where."""

import io

import pytest
from rest_framework.exceptions import ParseError, ValidationError

from routing.management_api.parsers import MAX_DEPTH, StrictJSONParser, check_strings


def parse(raw: bytes):
    return StrictJSONParser().parse(io.BytesIO(raw))


def test_plain_json_passes():
    data = parse(b'{"name": "g", "rules": [{"value": {"a": [1, 2.5, null, true]}}]}')
    assert data["rules"][0]["value"]["a"] == [1, 2.5, None, True]


@pytest.mark.parametrize("raw", [b"{", b'{"a": NaN}', b'{"a": -Infinity}', b"\xff", b"[" * 100_000])
def test_unparsable(raw):
    with pytest.raises(ParseError):
        parse(raw)


def test_depth_is_bounded():
    check_strings(eval("[" * MAX_DEPTH + "]" * MAX_DEPTH))
    with pytest.raises(ParseError):
        check_strings(eval("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2)))


@pytest.mark.parametrize("data,path", [
    ({"name": "a\x00"}, "name"),
    ({"rules": [{"path": "x"}, {"value": {"k": "\ud800"}}]}, "rules[1].value.k"),
    ({"rules": [{"value": {"k\x00": 1}}]}, "rules[0].value"),
    (["\x00"], "[0]"),
    ("\x00", "non_field_errors"),
])
def test_nul_and_surrogates_are_field_errors(data, path):
    with pytest.raises(ValidationError) as caught:
        check_strings(data)
    assert list(caught.value.detail) == [path]
