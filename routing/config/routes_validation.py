"""Checks shared by the routes file's sections (routing/config/importer.py, route_sections.py).

Values are checked in two steps, as the importer works in two phases:
- parsing (no database): `check_text` refuses NUL characters and lone surrogates anywhere in the routes
  (PostgreSQL stores neither), `check_keys` refuses unknown keys and values of the wrong YAML type
  (so `enabled: "no"` is an error, not a truthy string), `check_json` keeps rule values to what a
  JSON column stores;
- writing: every row goes through the admin's own form (`validate_form`), so a file is held to exactly
  the rules a person typing the same values in the admin is (lengths, choices, numbers, URL shape,
  model validation, uniqueness).
"""

import math
from collections.abc import Mapping

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

TYPES = {
    "str": (str,), "str?": (str, type(None)), "int": (int,), "number": (int, float), "bool": (bool,),
    "bool?": (bool, type(None)), "list": (list,), "any": (object,),
}
TYPE_WORDS = {"str": "a string", "str?": "a string or null", "int": "a whole number", "number": "a number",
              "bool": "true or false", "bool?": "true, false or null", "list": "a list", "any": "a value"}
# A rule value is stored as JSON; PostgreSQL's jsonb refuses NaN/Infinity, so they are refused here too.
JSON_SCALARS = (str, int, float, bool, type(None))


class RoutesFileError(Exception):
    """The file cannot be imported as a whole; the message says where and why."""


def check_text(node, where: str) -> None:
    """Refuse NUL characters and lone surrogates in every string (and mapping key) under `node`."""
    if isinstance(node, str):
        if "\x00" in node:
            raise RoutesFileError(f"{where}: contains a NUL character.")
        if any("\ud800" <= c <= "\udfff" for c in node):
            raise RoutesFileError(f"{where}: contains an invalid character (a lone surrogate).")
    elif isinstance(node, Mapping):
        for key, value in node.items():
            check_text(key, f"{where}: a key")
            check_text(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            check_text(item, f"{where}[{index}]")


def check_keys(where: str, mapping, schema: Mapping[str, str], *, required: tuple[str, ...] = ()) -> None:
    """`mapping` is a mapping whose keys are in `schema` ({key: type word}) with values of that type."""
    if not isinstance(mapping, Mapping):
        raise RoutesFileError(f"{where}: must be a mapping.")
    unknown = sorted(str(k) for k in mapping if k not in schema)
    if unknown:
        raise RoutesFileError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(schema)}).")
    for key in required:
        if mapping.get(key) in (None, ""):
            raise RoutesFileError(f"{where}: missing '{key}'.")
    for key, value in mapping.items():
        kind = schema[key]
        numeric_bool = kind in ("int", "number") and isinstance(value, bool)
        if numeric_bool or not isinstance(value, TYPES[kind]):
            raise RoutesFileError(f"{where}: '{key}' must be {TYPE_WORDS[kind]}.")
        if kind == "number" and not math.isfinite(value):
            raise RoutesFileError(f"{where}: '{key}' must be a finite number.")


def check_json(where: str, value) -> None:
    """A value a JSON column stores and reads back unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RoutesFileError(f"{where}: numbers must be finite.")
    if isinstance(value, list):
        for item in value:
            check_json(where, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RoutesFileError(f"{where}: mapping keys must be strings.")
            check_json(where, item)
    elif not isinstance(value, JSON_SCALARS):
        raise RoutesFileError(f"{where}: {type(value).__name__} is not a JSON value (quote it).")


def validate_form(form: forms.BaseForm, where: str, *, renames: Mapping[str, str] | None = None) -> None:
    """Raise RoutesFileError with every message of an invalid bound form, named as in the file."""
    if form.is_valid():
        return
    renames = renames or {}
    parts = []
    for field, errors in form.errors.items():
        text = " ".join(errors)
        parts.append(text if field == NON_FIELD_ERRORS else f"{renames.get(field, field)}: {text}")
    raise RoutesFileError(f"{where}: {'; '.join(parts)}")
