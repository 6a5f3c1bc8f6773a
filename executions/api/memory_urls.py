"""Routes of scoped memory (kept apart from the execution routes)."""

from django.urls import path

from executions.api import memory_views

memory_urlpatterns = [
    path("api/v1/memory/set", memory_views.MemorySetView.as_view()),
    path("api/v1/memory/get", memory_views.MemoryGetView.as_view()),
    path("api/v1/memory/delete", memory_views.MemoryDeleteView.as_view()),
    path("api/v1/memory/list", memory_views.MemoryListView.as_view()),
    path("api/v1/memory/events/history", memory_views.MemoryEventHistoryView.as_view()),
]
urlpatterns = memory_urlpatterns
