"""URLs: the OpenAI-compatible API under /v1 (DRF views, routing/api/views.py), the admin,
and the operations endpoints (routing/monitoring/views.py). gateway/asgi.py serves /v1 and
the operations endpoints with the lean API handler and the rest with Django's standard one;
both resolve through these patterns."""

from django.contrib import admin
from django.urls import include, path, re_path

from routing.api.views import ModelCallView, ModelsView, StoredResponseView, UnknownEndpointView
from routing.monitoring import views as ops


api = [
    path("v1/responses", ModelCallView.as_view(endpoint="responses", op_path="responses")),
    path("v1/chat/completions", ModelCallView.as_view(endpoint="chat", op_path="chat/completions")),
    path("v1/responses/compact", ModelCallView.as_view(endpoint="compact", op_path="responses/compact")),
    path("v1/responses/input_tokens",
         ModelCallView.as_view(endpoint="responses.input_tokens", op_path="responses/input_tokens")),
    path("v1/responses/<str:response_id>", StoredResponseView.as_view()),
    path("v1/responses/<str:response_id>/cancel",
         StoredResponseView.as_view(endpoint="responses.cancel", suffix="/cancel", http_method_names=["post"])),
    path("v1/responses/<str:response_id>/input_items",
         StoredResponseView.as_view(endpoint="responses.input_items", suffix="/input_items",
                                    http_method_names=["get"])),
    path("v1/models", ModelsView.as_view()),
    re_path(r"^v1(/.*)?$", UnknownEndpointView.as_view()),
]

urlpatterns = [
    *api,
    path("healthz", ops.healthz),
    path("readyz", ops.readyz),
    path("metrics", ops.metrics),
    path("admin/", admin.site.urls),
    path("api/", include("routing.management_api.urls")),  # management and audit API (README "Management API")
]
