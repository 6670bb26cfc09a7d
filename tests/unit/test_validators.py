"""routing/validators.py: a policy rule's JSON value fits jsonb and stays small."""

import pytest
from django.core.exceptions import ValidationError

from routing.validators import RULE_VALUE_MAX_BYTES, validate_rule_value


@pytest.mark.parametrize("value", [None, False, 0, "text", "\\u0000 as text", {"a": ["b", {"c": "é"}]}])
def test_accepted(value):
    validate_rule_value(value)


@pytest.mark.parametrize("value", ["a\x00", {"k": ["\x00"]}, {"k\x00": 1}, "\ud800", "x" * RULE_VALUE_MAX_BYTES])
def test_refused(value):
    with pytest.raises(ValidationError):
        validate_rule_value(value)
