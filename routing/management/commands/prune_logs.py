"""Request-log retention: `manage.py prune_logs --older-than 30d` (run it from cron or a scheduler)."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from routing.services import request_logs_prune

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def age(text: str) -> timedelta:
    """'30d', '12h', '90m' → timedelta (at least one minute)."""
    found = re.fullmatch(r"(\d{1,6})([dhm])", text.strip())
    if not found or int(found.group(1)) == 0:
        raise CommandError(f"--older-than takes a positive age like 30d, 12h or 90m, not {text!r}.")
    return timedelta(**{UNITS[found.group(2)]: int(found.group(1))})


class Command(BaseCommand):
    help = "Delete RequestLog rows older than an age, in batches (each its own short transaction)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Age like 30d, 12h or 90m.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows per DELETE (default 5000).")

    def handle(self, *args, older_than, batch_size, **options):
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000.")
        cutoff = timezone.now() - age(older_than)
        deleted = request_logs_prune(older_than=cutoff, batch_size=batch_size)
        self.stdout.write(f"Deleted {deleted} request log row(s) created before {cutoff:%Y-%m-%d %H:%M:%S %Z}.")
