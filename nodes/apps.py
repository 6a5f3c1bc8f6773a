from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Agent nodes"

    def ready(self) -> None:
        from nodes.api import schema  # noqa: F401 - registers the API-key scheme with drf-spectacular
