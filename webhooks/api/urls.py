from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("api/v1/executions/<str:execution_id>/webhook/redeliver", views.RedeliverView.as_view()),
]
