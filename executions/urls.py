"""The lifecycle event stream and the staff console (HTML)."""

from django.urls import path

from executions import sse, views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/ui/v1/executions/events", sse.events_view, name="execution-events"),
    path("api/ui/v1/executions/events/stats", sse.stats_view, name="execution-events-stats"),
    path("dashboard/", views.executions, name="dashboard"),
    path("dashboard/executions/<str:execution_id>/", views.execution, name="dashboard-execution"),
    path(
        "dashboard/executions/<str:execution_id>/<slug:action>/",
        views.execution_action,
        name="dashboard-execution-action",
    ),
    path("dashboard/nodes/", views.nodes, name="dashboard-nodes"),
    path("dashboard/queue/", views.queue, name="dashboard-queue"),
]
