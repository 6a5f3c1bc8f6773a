"""Routes: the JSON API at the root (the SDK drops any path prefix), admin, dashboard."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from executions.metrics import metrics_view

# The admin is also the operators' console: its lists need the screen's width more than a second
# menu (the Home page lists every model), so the list columns fit a 1400 px screen.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("", include("nodes.api.urls")),
    path("", include("executions.api.urls")),
    path("", include("executions.api.memory_urls")),
    path("", include("executions.urls")),
]

handler400 = "agentfield_project.exceptions.bad_request"
handler404 = "agentfield_project.exceptions.page_not_found"
handler500 = "agentfield_project.exceptions.server_error"
