"""/api/ URLs (included by gateway/urls.py): the resources, the OpenAPI schema and its docs pages, and a JSON 404
for any other path under /api/ (instead of Django's HTML page)."""

from django.urls import Resolver404, include, path, re_path, resolve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from routing.management_api import views
from routing.management_api.errors import exception_handler

router = SimpleRouter()
router.register("groups", views.ModelGroupViewSet, basename="api-group")
router.register("deployments", views.DeploymentViewSet, basename="api-deployment")
router.register("fallbacks", views.GroupFallbackViewSet, basename="api-fallback")
router.register("policies", views.ParamPolicyViewSet, basename="api-policy")
router.register("keys", views.ApiKeyViewSet, basename="api-key")
router.register("logs", views.RequestLogViewSet, basename="api-log")

settings_view = views.GatewaySettingsViewSet.as_view({"get": "retrieve", "patch": "partial_update"})


class NotFoundView(APIView):
    """Any other path under /api/: a 404 in the API's error shape (a path missing its trailing slash says so)."""

    authentication_classes = []
    permission_classes = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = views.AlwaysJSON
    schema = None  # not an endpoint of the schema

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        hint = ""
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundView:
                hint = f" Did you mean {request.path}/ ?"
        raise NotFound(f"No such endpoint: {request.method} {request.path}.{hint} See /api/schema/.")


urlpatterns = [
    path("", include(router.urls)),
    path("settings/", settings_view, name="api-settings"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"", NotFoundView.as_view()),
]
