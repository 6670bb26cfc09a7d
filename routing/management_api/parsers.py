"""The JSON parser for /api/ writes: DRF's, stricter about what may reach the database.

Refused with a 400 (`parse_error`) before any serializer runs:
- text that is not UTF-8, or not JSON; `NaN`/`Infinity` (not JSON, and meaningless in a limit or timeout);
- nesting deeper than MAX_DEPTH (Python's decoder would otherwise raise RecursionError: a 500);
- NUL characters and lone surrogates in any string or key (PostgreSQL cannot store either; a rule's
  JSON `value` is stored as it comes).
"""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def check_strings(data) -> None:
    """Walk parsed JSON (iteratively): bounded depth, no NUL, no lone surrogates."""
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        if isinstance(node, dict):
            stack.extend((k, depth + 1) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise ParseError("NUL characters (\\u0000) are not accepted.")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError("Lone surrogate characters are not accepted.") from None


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
