from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"

    def ready(self) -> None:
        from agentfield_project.postgres import availability
        from executions import callback_spool

        # Once the database answers again, apply the callbacks this machine had to refuse.
        availability.web.on_recovery(callback_spool.replay)
