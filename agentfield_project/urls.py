"""Routes: the JSON API at the root (the SDK drops any path prefix), admin, dashboard."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("nodes.api.urls")),
    path("", include("executions.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("executions.api.memory_urls")),
]

handler404 = "agentfield_project.exceptions.page_not_found"
handler500 = "agentfield_project.exceptions.server_error"
