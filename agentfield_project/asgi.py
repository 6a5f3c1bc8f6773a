"""ASGI entry point served by daphne: Django for HTTP (the SSE stream is an async view)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")

application = get_asgi_application()
