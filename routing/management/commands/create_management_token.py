from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from routing.management_api import roles
from routing.services import management_token_create


class Command(BaseCommand):
    help = ("Create a management API token acting as USER (their role: ops or auditor) and print it once "
            "(only its SHA-256 is stored).")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What uses the token (default: 'cli').")
        parser.add_argument("--expires-in-days", type=int, help="Expire after this many days (default: never).")

    def handle(self, *args, username, name, expires_in_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r} (create one with createsuperuser, or in the admin).")
        if expires_in_days is not None and not 1 <= expires_in_days <= 36500:
            raise CommandError("--expires-in-days must be between 1 and 36500.")
        expires = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, full = management_token_create(user=user, name=(name or "cli")[:200], expires_at=expires)
        role = roles.role_of(user)
        self.stderr.write(f"Created management token '{token.name}' for {user.username} (role: "
                          f"{role or 'none yet: add the user to the ops or auditor group'}). "
                          "It is shown once; store it now:")
        self.stdout.write(full)
