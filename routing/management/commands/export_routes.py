"""`python manage.py export_routes [--output FILE]`: see routing/config/exporter.py for what is written."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.config.exporter import export_routes


class Command(BaseCommand):
    help = ("Write groups, deployments, policies and fallbacks as YAML that import_routes reads back. "
            "Upstream keys are written as os.environ/NAME references, never as values.")

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")

    def handle(self, *args, output, **options):
        export = export_routes()
        if output:
            try:
                Path(output).write_text(export.text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc}") from exc
        else:
            self.stdout.write(export.text, ending="")
        if export.variables:
            self.stderr.write(f"To import this file, set these {len(export.variables)} environment variable(s) to "
                              "the upstream keys:")
            for variable in export.variables:
                self.stderr.write(f"  {variable.name}  ({', '.join(variable.deployments)})")
        else:
            self.stderr.write("No deployment has an upstream key: nothing to set before importing this file.")
