from django.apps import AppConfig
from django.db.backends.signals import connection_created


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Gateway routing"

    def ready(self) -> None:
        from routing import checks, signals  # noqa: F401  (system checks; route-table invalidation)
        from routing.console.stats import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="console-sqlite-functions")
