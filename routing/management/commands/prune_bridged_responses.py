"""Delete expired bridged responses, then the oldest ones until the store fits its total size
(forwarding/bridge_store.py; every gateway process also does this every BRIDGE_STORE_PRUNE_SECONDS)."""

from django.core.management.base import BaseCommand

from routing.forwarding.bridge_store import setting
from routing.services import bridged_responses_prune


class Command(BaseCommand):
    help = "Prune the bridged-response store: expired rows, then the oldest beyond the total size."

    def add_arguments(self, parser):
        parser.add_argument("--max-total-bytes", type=int, default=None,
                            help="Keep at most this many bytes of stored responses (default: "
                                 "settings.GATEWAY BRIDGE_STORE_MAX_TOTAL_BYTES, 1 GiB).")

    def handle(self, *args, max_total_bytes, **options):
        limit = max_total_bytes if max_total_bytes is not None else setting("BRIDGE_STORE_MAX_TOTAL_BYTES")
        expired, trimmed = bridged_responses_prune(max_total_bytes=limit)
        self.stdout.write(f"deleted {expired} expired and {trimmed} over the {limit}-byte total")
