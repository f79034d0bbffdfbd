"""Platform admin for CRM records: every business's contacts, read-only (changes go through
the CRM, where they are logged and keep their invariants)."""

from __future__ import annotations

from django.contrib import admin

from channels_app.admin import ReadOnlyAdmin
from crm.models import Contact


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("name", "phone", "source", "language", "created_at")
    list_filter = ("source", "language")
    search_fields = ("name", "phone", "email")
    fields = ("name", "phone", "email", "language", "source", "created_at", "updated_at")
