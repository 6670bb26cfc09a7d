"""The ops console: Django's admin, extended. The classes are declarative; writes go through `routing.services`,
reads through `routing.selectors`, and the console's own pages live in `routing.console`.

- `routes`: model groups and deployments (health, bulk enable/disable, clone, Test, rejected parameters).
- `policies`: param policies (effective rules, read-only presets, preview, history with restore).
- `keys`: client keys (one-time page, regenerate, expiry) and gateway settings (retire the master key).
- `audit`: the request log (filters, search, CSV export, dashboard) and response affinity, read-only.
- `tokens`: management API tokens (listed, revoked; created by `manage.py create_management_token`).

Secrets: upstream keys are write-only (`forms.DeploymentForm`) and shown masked ("••••abcd"); client keys are
shown once and stored as sha256; URL lookups on either column are refused (`common.SecretLookupsRefused`).
"""

from django.contrib import admin

from routing.admin import audit, keys, policies, routes, tokens  # noqa: F401  (registers the model admins)
from routing.admin.common import EstimatedCountPaginator  # noqa: F401  (tests and callers import it from here)
from routing.audit import admin as audit_admin  # noqa: F401  (registers the request-log quarantine)

admin.site.site_header = "LLM Gateway"
admin.site.site_title = "LLM Gateway admin"
admin.site.index_title = "Routes, keys and request logs"
# The app list is on the index page; without the sidebar the log and deployment lists keep all their columns on a
# 1400 px laptop screen (measured in tests/browser/test_console_layout.py).
admin.site.enable_nav_sidebar = False
