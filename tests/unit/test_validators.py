"""routing/validators.py: a policy rule's JSON value fits jsonb and stays small; timeouts and cooldowns
are seconds in a range that works."""

import pytest
from django.core.exceptions import ValidationError

from routing.validators import (RULE_VALUE_MAX_BYTES, validate_cooldown, validate_cooldown_window, validate_rule_value,
                                validate_timeout)


@pytest.mark.parametrize("value", [None, False, 0, "text", "\\u0000 as text", {"a": ["b", {"c": "é"}]}])
def test_accepted(value):
    validate_rule_value(value)


@pytest.mark.parametrize("value", ["a\x00", {"k": ["\x00"]}, {"k\x00": 1}, "\ud800", "x" * RULE_VALUE_MAX_BYTES])
def test_refused(value):
    with pytest.raises(ValidationError):
        validate_rule_value(value)


@pytest.mark.parametrize(("validator", "accepted", "refused"), [
    (validate_timeout, [0.001, 5, 600.0, 7 * 86400], [0, -1, -0.001, 7 * 86400 + 1, 1e300]),
    (validate_cooldown_window, [0.5, 60, 86400], [0, -60, 86401]),
    (validate_cooldown, [0, 30, 86400], [-0.001, -30, 86401]),
])
def test_seconds(validator, accepted, refused):
    for value in accepted:
        validator(value)
    for value in refused:
        with pytest.raises(ValidationError):
            validator(value)
