"""ASGI entry point served by daphne: Django for HTTP (the SSE stream is an async view)."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")

# Static files (admin, API docs) are served by the same process: there is no separate web server.
application = ASGIStaticFilesHandler(get_asgi_application())
