"""Checks on the routes file's values before anything reaches the database (routing/config/routes_validation.py)."""

import datetime as dt

import pytest

from routing.config.routes_validation import RoutesFileError, check_json, check_keys, check_text


@pytest.mark.parametrize(("node", "message"), [
    ({"a": ["ok", "b\0"]}, "doc.a[1]: contains a NUL character."),
    ({"a\0": 1}, "doc: a key: contains a NUL character."),
    ({"a": {"b": "\udc80"}}, "doc.a.b: contains an invalid character (a lone surrogate)."),
])
def test_check_text_names_the_path(node, message):
    with pytest.raises(RoutesFileError) as excinfo:
        check_text(node, "doc")
    assert str(excinfo.value) == message


def test_check_text_accepts_any_other_text():
    check_text({"é": ["日本", "emoji 🙂", 1, None, 2.5, True]}, "doc")


@pytest.mark.parametrize(("value", "kind", "ok"), [
    (1, "int", True), (True, "int", False), (1.5, "int", False), (1, "number", True), (False, "number", False),
    (float("nan"), "number", False), (None, "bool?", True), ("no", "bool", False), (None, "str?", True),
    (None, "str", False), ([], "list", True),
])
def test_check_keys_types(value, kind, ok):
    if ok:
        check_keys("e", {"k": value}, {"k": kind})
    else:
        with pytest.raises(RoutesFileError, match="e: 'k' must be"):
            check_keys("e", {"k": value}, {"k": kind})


@pytest.mark.parametrize("value", [float("inf"), {"a": [float("nan")]}, dt.date(2025, 1, 1), {1: "a"}, {"a"}, b"x"])
def test_check_json_refuses_what_a_json_column_cannot_hold(value):
    with pytest.raises(RoutesFileError):
        check_json("v", value)


def test_check_json_accepts_json():
    check_json("v", {"a": [1, 2.5, None, True, "x", {"b": []}]})
