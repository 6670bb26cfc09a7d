"""Paging: page numbers for the small configuration lists, a cursor for the request log.

The log is ordered newest first by (created_at, id), so pages stay stable while rows arrive, and paging
never counts the table (a cursor needs no COUNT(*), which is slow on millions of rows). `page_size` is
1 to MAX_PAGE_SIZE; anything else is a 400 (DRF would silently use the default)."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 1000


class StrictPageSize:
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class ConfigPagination(StrictPageSize, PageNumberPagination):
    page_size = 100


class LogCursorPagination(StrictPageSize, CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
