from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Agent nodes"

    def ready(self) -> None:
        from agentfield_project.runtime import intake
        from nodes import auth, checks  # noqa: F401 - checks registers the system checks
        from nodes.api import schema  # noqa: F401 - registers the API-key scheme with drf-spectacular

        # The server refuses a body sent without credentials before reading it (intake.py).
        intake.credentials = auth.credentials_without_database
