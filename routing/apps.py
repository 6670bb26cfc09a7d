from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Gateway routing"

    def ready(self) -> None:
        from routing import checks, signals  # noqa: F401  (system checks; route-table invalidation)
