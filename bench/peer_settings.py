"""Django settings for the django-tasks-db peer: its own apps and database, none of ours."""

import environ

env = environ.Env()

SECRET_KEY = "bench-only"  # noqa: S105 - a throw-away peer configuration
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_tasks", "django_tasks_db"]
# Persistent connections: with Django's default CONN_MAX_AGE=0 the worker's close_old_connections()
# reconnects for every task and the peer measures connection set-up (~30 jobs/s here), not its queue.
DATABASES = {"default": {**env.db("DATABASE_URL"), "CONN_MAX_AGE": None}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
