"""`python manage.py import_routes FILE.yaml [--dry-run]`: see routing/config/importer.py for the mapping."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.config.importer import RoutesFileError, import_routes


class Command(BaseCommand):
    help = "Import a LiteLLM-style model_list (YAML) into model groups, deployments and policies. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("file", help="YAML file with a top-level model_list (and optionally model_groups, "
                            "param_policies, as export_routes writes them).")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report, write nothing.")

    def handle(self, *args, file, dry_run, **options):
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            summary = import_routes(text=text, environ=os.environ, dry_run=dry_run)
        except RoutesFileError as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from exc
        for note in summary.notes:
            self.stderr.write(f"note: {note}")
        updated = f"{summary.groups_updated} updated, " if summary.groups_updated else ""
        self.stdout.write(
            f"Groups: {summary.groups_created} created, {updated}{summary.groups_unchanged} unchanged. "
            f"Deployments: {summary.deployments_created} created, {summary.deployments_updated} updated, "
            f"{summary.deployments_unchanged} unchanged."
        )
        if summary.policies is not None:
            self.stdout.write("Policies: {created} created, {updated} updated, {unchanged} unchanged."
                              .format(**summary.policies))
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
