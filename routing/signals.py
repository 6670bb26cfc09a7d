"""Cache invalidation only: any route or key change bumps the shared route version
(after commit), which every gateway process polls to reload its in-memory tables."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from routing.models import ApiKey, Deployment, GatewaySettings, GroupFallback, ModelGroup, ParamPolicy, PolicyRule

_WATCHED = (ModelGroup, Deployment, ParamPolicy, PolicyRule, ApiKey, GroupFallback, GatewaySettings)


def _changed(**kwargs) -> None:
    from routing import services
    from routing.config import route_table

    transaction.on_commit(services.route_version_bump)
    route_table.table.mark_stale()


for _model in _WATCHED:
    post_save.connect(_changed, sender=_model, dispatch_uid=f"routes-save-{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"routes-delete-{_model.__name__}")


@receiver(m2m_changed, sender=ApiKey.allowed_groups.through, dispatch_uid="routes-key-groups")
def _key_groups_changed(action: str, **kwargs) -> None:
    if action.startswith("post_"):
        _changed()
