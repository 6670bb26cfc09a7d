"""Used by `make run`: the demo route, an admin login and the local dev secrets."""

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
            password_file.write_text(password)
        password = password_file.read_text().strip() if password_file.exists() else "(set earlier; see createsuperuser)"
        master = settings.GATEWAY["MASTER_KEY"]
        self.stdout.write(
            f"\n  Gateway:  {url}/v1   (model \"demo\" → built-in mock provider)\n"
            f"  Admin:    {url}/admin/   user: admin   password: {password}\n"
            f"  API key:  {master or '(none: python manage.py create_api_key NAME)'}\n"
            f"  Try:      curl -N {url}/v1/responses -H 'Authorization: Bearer {master or 'KEY'}' "
            f"-d '{{\"model\":\"demo\",\"input\":\"Hello\",\"stream\":true}}'\n"
        )
