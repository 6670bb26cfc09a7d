"""routing/audit/admin.py: quarantined request-log rows are visible in the admin, read-only."""

import pytest
from django.urls import reverse

from routing.models import RequestLogQuarantine


@pytest.fixture
def quarantined(db) -> RequestLogQuarantine:
    return RequestLogQuarantine.objects.create(request_id="req_bad", reason="DataError: value too long",
                                               raw="['req_bad', 'x\\\\x00']")


def url(view: str, *args) -> str:
    return reverse(f"admin:routing_requestlogquarantine_{view}", args=args)


def test_quarantined_rows_are_listed_and_shown(admin_client, quarantined):
    listing = admin_client.get(url("changelist") + "?q=req_bad").content.decode()
    assert "req_bad" in listing and "DataError: value too long" in listing
    page = admin_client.get(url("change", quarantined.pk)).content.decode()
    assert "x\\\\x00" in page and "Save" not in page


def test_quarantine_is_read_only(admin_client, quarantined):
    assert admin_client.get(url("add")).status_code == 403
    assert admin_client.post(url("change", quarantined.pk), {"reason": "edited"}).status_code == 403
    assert admin_client.post(url("delete", quarantined.pk), {"post": "yes"}).status_code == 403
    quarantined.refresh_from_db()
    assert quarantined.reason == "DataError: value too long"
