"""Field validators the models use (the admin's forms and the management API run them through full_clean)."""

import json

from django.core.exceptions import ValidationError

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


MAX_TIMEOUT_SECONDS = 7 * 86400
MAX_COOLDOWN_SECONDS = 86400


def validate_timeout(value) -> None:
    """An upstream timeout: more than 0 seconds (0 or less fails every call at once), at most a week."""
    if value is not None and not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise ValidationError(f"Enter a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS} (7 days).")


def validate_cooldown_window(value) -> None:
    """The window failures are counted over: more than 0 seconds, at most a day."""
    if value is not None and not 0 < value <= MAX_COOLDOWN_SECONDS:
        raise ValidationError(f"Enter a number of seconds above 0 and at most {MAX_COOLDOWN_SECONDS} (1 day).")


def validate_cooldown(value) -> None:
    """How long a failing deployment is skipped: 0 (never skipped) up to a day."""
    if value is not None and not 0 <= value <= MAX_COOLDOWN_SECONDS:
        raise ValidationError(f"Enter a number of seconds from 0 to {MAX_COOLDOWN_SECONDS} (1 day).")
