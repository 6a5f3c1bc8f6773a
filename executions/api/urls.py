from django.urls import path

from executions.api import openapi, sync, views  # noqa: F401 - openapi describes these routes

urlpatterns = [
    path("api/v1/execute/async/<str:target>", views.ExecuteAsyncView.as_view()),
    path("api/v1/execute/<str:target>", sync.execute_sync),
    path("api/v1/executions", views.ExecutionListView.as_view()),
    path("api/v1/executions/batch-status", views.BatchStatusView.as_view()),
    path("api/v1/executions/note", views.NoteView.as_view()),
    path("api/ui/v1/executions/note", views.NoteView.as_view()),
    path("api/v1/workflow/executions/events", views.StepEventView.as_view()),
    path("api/v1/executions/<str:execution_id>", views.ExecutionDetailView.as_view()),  # SDK polls: pacing.py
    path("api/v1/executions/<str:execution_id>/status", views.CallbackView.as_view()),
    path("api/v1/executions/<str:execution_id>/cancel", views.CancelView.as_view()),
    path("api/v1/executions/<str:execution_id>/restart", views.RestartView.as_view()),
    path("api/v1/runs/<str:run_id>/cancel", views.RunCancelView.as_view()),
    path("api/v1/executions/<str:execution_id>/approval-response", views.ApprovalResponseView.as_view()),
    path(
        "api/v1/agents/<str:node_id>/executions/<str:execution_id>/request-approval",
        views.ApprovalRequestView.as_view(),
    ),
    path(
        "api/v1/agents/<str:node_id>/executions/<str:execution_id>/approval-status", views.ApprovalStatusView.as_view()
    ),
    path("api/v1/agents/<str:node_id>/executions/<str:execution_id>/awaiter-status", views.AwaiterStatusView.as_view()),
    path("api/v1/webhooks/approval-response", views.ApprovalWebhookView.as_view()),
    path("api/v1/executions/<str:execution_id>/logs", views.LogsView.as_view()),
    path("api/v1/executions/<str:execution_id>/webhook/redeliver", views.RedeliverView.as_view()),
]
