from django.core.management.base import BaseCommand, CommandError

from routing.models import ModelGroup
from routing.services import api_key_create


class Command(BaseCommand):
    help = "Create a client API key and print it once (only its SHA-256 is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--groups", default="", help="Comma-separated model groups this key may use (default: all).")
        parser.add_argument("--rpm", type=int)
        parser.add_argument("--tpm", type=int)
        parser.add_argument("--max-parallel", type=int)

    def handle(self, *args, name, groups, rpm, tpm, max_parallel, **options):
        wanted = [g.strip() for g in groups.split(",") if g.strip()]
        found = list(ModelGroup.objects.filter(name__in=wanted))
        missing = sorted(set(wanted) - {g.name for g in found})
        if missing:
            raise CommandError(f"Unknown model group(s): {', '.join(missing)}")
        key, full = api_key_create(name=name, allowed_groups=found, rpm=rpm, tpm=tpm, max_parallel=max_parallel)
        self.stderr.write(f"Created API key '{key.name}' (prefix {key.prefix}). It is shown once; store it now:")
        self.stdout.write(full)
