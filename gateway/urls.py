from django.contrib import admin
from django.http import HttpResponse
from django.urls import path, re_path

from routing.views import ModelCallView, ModelsView, NotFoundView, StoredResponseView


def healthz(request):
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


def model_call(endpoint: str, op_path: str):
    return ModelCallView.as_view(endpoint=endpoint, op_path=op_path)


def stored(endpoint: str, suffix: str, methods: list[str]):
    return StoredResponseView.as_view(endpoint=endpoint, suffix=suffix, http_method_names=methods)


urlpatterns = [
    path("v1/responses", model_call("responses", "responses")),
    path("v1/responses/compact", model_call("compact", "responses/compact")),
    path("v1/responses/input_tokens", model_call("responses.input_tokens", "responses/input_tokens")),
    path("v1/chat/completions", model_call("chat", "chat/completions")),
    path("v1/responses/<str:response_id>", stored("responses.get", "", ["get", "delete"])),
    path("v1/responses/<str:response_id>/cancel", stored("responses.cancel", "/cancel", ["post"])),
    path("v1/responses/<str:response_id>/input_items", stored("responses.input_items", "/input_items", ["get"])),
    path("v1/models", ModelsView.as_view()),
    re_path(r"^v1/(?P<rest>.*)$", NotFoundView.as_view()),
    path("healthz", healthz),
    path("admin/", admin.site.urls),
]
