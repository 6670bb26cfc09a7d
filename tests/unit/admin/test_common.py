"""routing/admin/common.py: durations as people read them."""

import pytest

from routing.admin.common import humane_ms


@pytest.mark.parametrize(("ms", "shown"), [
    (None, "—"), (0.0, "0.00 ms"), (0.42, "0.42 ms"), (9.999, "10.00 ms"), (10, "10 ms"), (412.3, "412 ms"),
    (999.4, "999 ms"), (1000, "1.00 s"), (5004.969088000053, "5.00 s"), (59_990, "59.99 s"), (60_000, "1 min 0 s"),
    (83_012, "1 min 23 s"), (3_600_000, "60 min 0 s"),
])
def test_humane_ms(ms, shown):
    assert humane_ms(ms) == shown
