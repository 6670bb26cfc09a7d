"""The JSON parser for /api/ writes: DRF's, stricter about what may reach the database.

Refused with a 400 before any serializer runs:
- text that is not UTF-8, or not JSON; `NaN`/`Infinity` (not JSON, and meaningless in a limit or timeout);
- nesting deeper than MAX_DEPTH (Python's decoder would otherwise raise RecursionError: a 500);
  these are `parse_error`s;
- NUL characters and lone surrogates in any string or key (PostgreSQL can store neither; a rule's JSON
  `value` is stored as it comes): a field error under the string's path, e.g. `rules[0].value`.
"""

import json

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def check_strings(data) -> None:
    """Walk parsed JSON (iteratively): bounded depth, no NUL, no lone surrogates. A bad string is reported
    under its path (`rules[1].value.text`), like a field error."""
    stack = [(data, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        if isinstance(node, dict):
            for key, value in node.items():
                inner = f"{path}.{key}" if path else str(key)
                stack.append((value, inner, depth + 1))
                stack.append((key, path or "non_field_errors", depth + 1))  # popped first: keys before values
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{index}]", depth + 1) for index, value in enumerate(node))
        elif isinstance(node, str):
            if "\x00" in node:
                raise ValidationError({path or "non_field_errors": ["NUL characters (\\u0000) are not accepted."]})
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError({path or "non_field_errors": ["Lone surrogate characters are not accepted."]}) \
                    from None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error: {exc}") from None
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        check_strings(data)
        return data
