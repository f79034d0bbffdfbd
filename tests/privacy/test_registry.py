"""The personal-data registry covers every tenant-owned model, correctly."""

from __future__ import annotations

import pytest
from django.db import models

from crm.models import Contact
from privacy import registry
from privacy.registry import Erasure, Retention
from tenants.models import TenantOwned


def test_every_tenant_owned_model_is_declared_with_real_fields_and_paths():
    assert registry.problems() == []


def test_a_new_tenant_owned_model_without_a_declaration_is_reported():
    class Undeclared(TenantOwned):
        secret_notes = models.TextField()

        class Meta:
            app_label = "crm"

    try:
        found = registry.problems()
        assert "crm.Undeclared is not declared in its app's personal_data.py" in found
    finally:
        from django.apps import apps

        del apps.all_models["crm"]["undeclared"]
        apps.clear_cache()


def test_a_wrong_field_or_subject_path_is_reported(monkeypatch):
    bad = dict(registry.REGISTRY)
    bad["crm.Note"] = registry.PersonalData(
        model=registry.REGISTRY["crm.Note"].model,
        fields=("bodyy",),
        subject_path="deal",
        erasure=Erasure.DELETE,
        retention=Retention.CONTACT,
    )
    monkeypatch.setattr(registry, "REGISTRY", bad)
    found = registry.problems()
    assert "crm.Note: no field named 'bodyy'" in found
    assert "crm.Note: 'deal' does not lead to a contact" in found


@pytest.mark.parametrize("label", ["crm.Contact", "channels_app.Message", "privacy.ConsentEvent"])
def test_the_core_records_of_a_person_lead_to_their_contact(label):
    entry = registry.entry_for(label)
    assert entry is not None and entry.subject_path is not None
    assert registry._follow(entry.model, entry.subject_path) is Contact


def test_raw_webhook_payloads_are_scanned_and_expire_with_their_own_retention():
    entry = registry.entry_for("channels_app.InboundWebhook")
    assert entry.erasure is Erasure.SCAN_AND_DELETE
    assert entry.retention is Retention.WEBHOOK_PAYLOADS
    assert "body" in entry.fields
