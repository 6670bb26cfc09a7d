"""routing/management/commands/prune_logs.py: retention in batches."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from routing.models import RequestLog


def test_rows_older_than_the_age_are_deleted_in_batches(db, django_assert_max_num_queries):
    now = timezone.now()
    for i, age in enumerate([40, 35, 31, 29, 1]):
        RequestLog.objects.create(request_id=f"req_{i}", created_at=now - timedelta(days=age), method="POST",
                                  endpoint="responses", path="/v1/responses", status=200)
    out = StringIO()
    with django_assert_max_num_queries(2 * 3 + 1):  # 3 rows in batches of 2: select+delete twice, one empty select
        call_command("prune_logs", "--older-than", "30d", "--batch-size", "2", stdout=out)
    assert "Deleted 3 request log row(s)" in out.getvalue()
    assert sorted(RequestLog.objects.values_list("request_id", flat=True)) == ["req_3", "req_4"]


@pytest.mark.parametrize("args", [["--older-than", "30"], ["--older-than", "0d"], ["--older-than", "1y"],
                                  ["--older-than", "1d", "--batch-size", "0"]])
def test_bad_arguments_are_refused(db, args):
    with pytest.raises(CommandError):
        call_command("prune_logs", *args)
