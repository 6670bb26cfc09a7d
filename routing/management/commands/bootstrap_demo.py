"""Used by `make run`: the demo route, an admin login and the local dev secrets.

The admin password goes to var/admin-password, readable by its owner only (0600). What
`make run` prints says where the secrets are, never the secrets themselves (its output
ends up in terminals' scrollback and captured logs).
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
            where_password = "password in var/admin-password"
        else:
            where_password = "password set earlier (python manage.py changepassword admin)"
        local_env = Path(settings.BASE_DIR) / ".gateway.local.env"
        variable = "GATEWAY_MASTER_KEY"
        if not settings.GATEWAY["MASTER_KEY"]:
            key, variable = "none yet: python manage.py create_api_key NAME prints one", "KEY"
            setup = "KEY=<the key create_api_key printed>"
        elif local_env.exists() and "GATEWAY_MASTER_KEY=" in local_env.read_text():
            key = "GATEWAY_MASTER_KEY in .gateway.local.env (the local master key: every model)"
            setup = "export GATEWAY_MASTER_KEY=$(sed -n 's/^GATEWAY_MASTER_KEY=//p' .gateway.local.env)"
        else:
            key, setup = "GATEWAY_MASTER_KEY from your environment (every model)", ""
        curl = (f"curl -N {url}/v1/responses -H \"Authorization: Bearer ${variable}\" "
                "-d '{\"model\":\"demo\",\"input\":\"Hello\",\"stream\":true}'")
        try_lines = f"{setup}\n            {curl}" if setup else curl
        self.stdout.write(
            f"\n  Gateway:  {url}/v1   (model \"demo\" → built-in mock provider)\n"
            f"  Admin:    {url}/admin/   user: admin   {where_password}\n"
            f"  API key:  {key}\n"
            f"  Try:      {try_lines}\n"
        )


def write_secret(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        fh.write(text)
