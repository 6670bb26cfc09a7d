from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Gateway routing"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (route-table invalidation only)
