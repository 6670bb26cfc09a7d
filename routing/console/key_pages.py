"""Client key pages: the one-time key page (after add or regenerate) and the master key's status.

The full key exists in the response body only: never in a cookie, the session or a message, and the page is
sent with `Cache-Control: no-store` so neither the browser nor a proxy keeps a copy."""

from django.conf import settings
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from routing import selectors, services
from routing.admin.common import page_context
from routing.models import ApiKey


def one_time_page(model_admin, request, key: ApiKey, full_key: str, *, regenerated: bool):
    response = TemplateResponse(request, "console/key_created.html", page_context(
        model_admin, request, f"Key for “{key.name}”", key, full_key=full_key, regenerated=regenerated))
    add_never_cache_headers(response)  # no-store, no-cache, must-revalidate, private
    return response


def regenerate(model_admin, request, object_id):
    """GET: confirm. POST: a new secret for the key (same name, groups, limits); the old one stops working."""
    key = model_admin.get_object(request, unquote(object_id))
    if key is None:
        raise Http404("No such key.")
    if not model_admin.has_change_permission(request, key):
        raise PermissionDenied
    if request.method == "POST":
        return one_time_page(model_admin, request, key, services.api_key_regenerate(key=key), regenerated=True)
    return TemplateResponse(request, "console/key_regenerate.html",
                            page_context(model_admin, request, f"Regenerate “{key.name}”", key))


def master_key_status() -> dict:
    configured = bool(settings.GATEWAY["MASTER_KEY"])
    enabled = selectors.master_key_enabled()
    if not configured:
        summary = "not set (no bootstrap key)"
    elif enabled:
        summary = "set and accepted (bootstrap key: every group)"
    else:
        summary = "set, but retired: clients presenting it get 401"
    return {"configured": configured, "enabled": enabled, "summary": summary,
            "usable_keys": selectors.usable_api_keys_exist()}
