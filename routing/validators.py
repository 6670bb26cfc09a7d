"""Field validators the models and forms use (the admin's forms, import_routes and the management API run them)."""

import json
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

RULE_VALUE_MAX_BYTES = 65536


def validate_rule_value(value) -> None:
    """A rule's JSON value is stored as it comes (jsonb on PostgreSQL, which holds neither NUL nor lone
    surrogates): at most RULE_VALUE_MAX_BYTES of JSON, and neither in any string or key."""
    if len(json.dumps(value)) > RULE_VALUE_MAX_BYTES:
        raise ValidationError(f"The value is larger than {RULE_VALUE_MAX_BYTES} bytes of JSON.")
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and ("\x00" in node or not node.isascii() and _has_surrogate(node)):
            raise ValidationError("The value may not contain NUL characters or lone surrogates.")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False



@deconstructible
class Seconds:
    """A number of seconds in a range that works: above `low` (or from it, with `low_included`), at most `high`."""

    def __init__(self, low: float, high: float, low_included: bool = False) -> None:
        self.low, self.high, self.low_included = low, high, low_included

    def __call__(self, value) -> None:
        if value is None or (self.low <= value if self.low_included else self.low < value) and value <= self.high:
            return
        lower = "from" if self.low_included else "above"
        raise ValidationError(f"Enter a number of seconds {lower} {self.low:g} and at most {self.high:g}.")

    def __eq__(self, other) -> bool:
        return isinstance(other, Seconds) and (self.low, self.high, self.low_included) == (
            other.low, other.high, other.low_included)


DAY = 86400
validate_timeout = Seconds(0, 7 * DAY)  # 0 or less fails every upstream call at once
validate_cooldown_window = Seconds(0, DAY)
validate_cooldown = Seconds(0, DAY, low_included=True)  # 0: a failing deployment is never taken out


def validate_upstream_url(value: str) -> None:
    """http(s)://host[:port][/path]. Single-label hosts are fine (`http://vllm:8000/v1`,
    a Docker or Kubernetes service name), which Django's URLValidator refuses."""
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValidationError("Enter an http:// or https:// URL, e.g. https://RESOURCE.openai.azure.com")
    try:
        parts.port
    except ValueError:
        raise ValidationError("The port is not a number.") from None


def validate_upstream_key(value: str) -> None:
    """An upstream key travels in an HTTP header: visible ASCII only (a pasted key with a stray
    non-ASCII character or line break could never be sent)."""
    if value and not all("!" <= c <= "~" for c in value):
        raise ValidationError("The key may only contain visible ASCII characters (no spaces, line breaks or "
                              "accented letters); check what was pasted.")
