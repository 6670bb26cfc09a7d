"""Used by `make run`: the demo route, an admin login and the local dev secrets.

The admin password goes to var/admin-password, readable by its owner only (0600).
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from routing.services import demo_route_ensure, presets_ensure


class Command(BaseCommand):
    help = "Ensure the demo route (model 'demo' → built-in mock) and an 'admin' superuser exist."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, url, **options):
        presets_ensure()
        demo_route_ensure()
        password_file = Path(settings.BASE_DIR) / "var" / "admin-password"
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            write_secret(password_file, password)
        if password_file.exists():
            os.chmod(password_file, 0o600)  # written world-readable by earlier versions
            password = password_file.read_text().strip()
        else:
            password = "(set earlier; see createsuperuser)"
        master = settings.GATEWAY["MASTER_KEY"]
        self.stdout.write(
            f"\n  Gateway:  {url}/v1   (model \"demo\" → built-in mock provider)\n"
            f"  Admin:    {url}/admin/   user: admin   password: {password}\n"
            f"  API key:  {master or '(none: python manage.py create_api_key NAME)'}\n"
            f"  Try:      curl -N {url}/v1/responses -H 'Authorization: Bearer {master or 'KEY'}' "
            f"-d '{{\"model\":\"demo\",\"input\":\"Hello\",\"stream\":true}}'\n"
        )


def write_secret(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        fh.write(text)
