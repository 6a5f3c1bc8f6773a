from django.urls import path

from nodes.api import views

urlpatterns = [
    path("api/v1/health", views.HealthView.as_view()),
    path("api/v1/did/register", views.DidRegisterView.as_view()),
    path("api/v1/nodes", views.NodeListView.as_view()),
    path("api/v1/nodes/register", views.RegisterView.as_view()),
    path("api/v1/nodes/<str:node_id>", views.NodeDetailView.as_view()),
    path("api/v1/nodes/<str:node_id>/heartbeat", views.HeartbeatView.as_view()),
    path("api/v1/nodes/<str:node_id>/shutdown", views.ShutdownView.as_view()),
]
