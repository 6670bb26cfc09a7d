"""Paging: page numbers for the small configuration lists, a cursor for the request log.

The log is ordered newest first by (created_at, id), so pages stay stable while rows arrive, and paging
never counts the table (a cursor needs no COUNT(*), which is slow on millions of rows)."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class ConfigPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class LogCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
