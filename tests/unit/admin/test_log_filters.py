"""routing/admin/log_filters.py: the time-range filter's parsing of what people type."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from routing.admin.log_filters import parse_instant


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25 14:03:07", datetime(2026, 11, 25, 14, 3, 7, tzinfo=UTC)),
    ("2026-11-25T14:03", datetime(2026, 11, 25, 14, 3, tzinfo=UTC)),
    ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
    (" 2026-11-25 14:03:07 ", datetime(2026, 11, 25, 14, 3, 7, tzinfo=UTC)),
    ("2026-11-25T14:03:07+02:00", datetime(2026, 11, 25, 14, 3, 7, tzinfo=timezone(timedelta(hours=2)))),
])
def test_instants(text, expected):
    assert parse_instant(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-45", "2026-11-25 25:00", "2026\x00-11-25",
                                  "2026-11-25 " + "0" * 40])
def test_what_is_not_an_instant(text):
    assert parse_instant(text) is None
