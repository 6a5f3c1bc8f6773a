"""The django-tasks-db peer's no-op task (imported only under bench/peer_settings.py)."""

from django_tasks import task


@task()
def noop() -> None:
    """Does nothing: the benchmark measures the queue, not the work."""
