"""Config history for API writes: every django-simple-history entry written during an API write names the
acting user (a token acts as its user; the master key as nobody), as the admin's `_history_user` does, and
the objects the API saves itself carry a change reason naming the credential ("api: token terraform-ci")."""

from contextlib import contextmanager
from dataclasses import dataclass

from simple_history.models import HistoricalRecords

from routing.management_api import roles
from routing.management_api.models import ManagementToken

REASON_LIMIT = 100  # simple-history's history_change_reason column


@dataclass
class _Actor:
    """What simple-history reads from its request context: `.user` (None when no Django user acted)."""

    user: object


def change_reason(request) -> str:
    if request.user is roles.MASTER_KEY_USER:
        reason = "api: master key"
    elif isinstance(request.auth, ManagementToken):
        reason = f"api: token {request.auth.name}"
    else:
        reason = "api: session"
    return reason[:REASON_LIMIT]


@contextmanager
def recorded_as(request):
    """Inside: history entries name `request`'s user (instead of the middleware's Django request, whose user a
    token never sets); the previous context is restored on the way out."""
    context = HistoricalRecords.context
    previous = getattr(context, "request", None)
    user = roles.django_user(request.user)
    context.request = _Actor(user=user if user is not None else _Nobody())
    try:
        yield
    finally:
        if previous is None:
            del context.request
        else:
            context.request = previous


class _Nobody:
    """simple-history asks `user.is_authenticated` before using it: the master key is recorded as no user."""

    is_authenticated = False


def attribute(instance, request) -> None:
    """What the admin does in `save_model` (`obj._history_user = request.user`), plus the change reason."""
    instance._history_user = roles.django_user(request.user)
    instance._change_reason = change_reason(request)
