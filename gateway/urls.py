from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

# /v1/* never reaches Django's URL resolver: gateway/asgi.py sends it to routing.asgi_api.


def healthz(request):
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


urlpatterns = [
    path("healthz", healthz),
    path("admin/", admin.site.urls),
]
