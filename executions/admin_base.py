"""The base of this app's ModelAdmins: the lists are an operator's console, so they must fit the screen."""

from __future__ import annotations

from django.contrib import admin


class ConsoleAdmin(admin.ModelAdmin):
    """Compact id columns (dashboard/admin.css), so the lists fit a 1400 px screen."""

    class Media:
        css = {"all": ["dashboard/admin.css"]}
