"""P10: an owner deletes the business; it is locked for a grace period, can be restored, and
is then removed to the last row, while other businesses keep everything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Channel, Message
from privacy import tasks, tenant_deletion
from privacy.models import SecurityEvent
from tenants.context import platform_access, tenant_context
from tenants.models import Membership, Role, Tenant, User, tenant_owned_models
from tests.factories import (
    ChannelFactory,
    ContactImportFactory,
    MessageFactory,
    factory_for,
    member,
)

pytestmark = pytest.mark.django_db


def owner_membership(tenant, user):
    return Membership.objects.get(tenant=tenant, user=user)


def schedule(tenant, owner, *, now=None):
    return tenant_deletion.request_deletion(
        tenant=tenant, by=owner_membership(tenant, owner), confirm_slug=tenant.slug, now=now
    )


def test_an_owner_requests_deletion_by_typing_the_address(tenant_a, owner_a):
    with pytest.raises(ValidationError) as wrong:
        tenant_deletion.request_deletion(
            tenant=tenant_a, by=owner_membership(tenant_a, owner_a), confirm_slug="alpha"
        )
    assert "alpha-dental" in str(wrong.value)

    now = timezone.now()
    tenant = schedule(tenant_a, owner_a, now=now)

    assert tenant.status == Tenant.Status.DELETION_REQUESTED
    assert tenant.deletion_due_at == now + timedelta(days=30)
    assert tenant.deletion_requested_by == owner_a
    with tenant_context(tenant):
        assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.DELETION_REQUESTED).exists()


def test_an_admin_cannot_request_deletion(tenant_a):
    admin = member(tenant_a, role=Role.ADMIN)
    with pytest.raises(ValidationError):
        tenant_deletion.request_deletion(
            tenant=tenant_a, by=owner_membership(tenant_a, admin), confirm_slug=tenant_a.slug
        )


def test_the_grace_period_follows_the_setting(tenant_a, owner_a, settings):
    settings.TENANT_DELETION_GRACE_DAYS = 10
    now = timezone.now()
    assert schedule(tenant_a, owner_a, now=now).deletion_due_at == now + timedelta(days=10)


def test_every_page_of_a_locked_business_shows_the_deletion_page(client, tenant_a, owner_a):
    schedule(tenant_a, owner_a)
    agent = member(tenant_a, role=Role.AGENT)
    for user in (owner_a, agent):
        client.force_login(user)
        for name in ("tenant:home", "channels:inbox", "tenant:settings", "privacy:centre"):
            response = client.get(reverse(name, kwargs={"tenant_slug": tenant_a.slug}))
            assert response.status_code == 423, (user, name)
            assert "scheduled for deletion" in response.content.decode()
    # Only an owner gets the restore button.
    html = client.get(reverse("tenant:home", kwargs={"tenant_slug": tenant_a.slug})).content
    assert b"Restore the business" not in html
    client.force_login(owner_a)
    html = client.get(reverse("tenant:home", kwargs={"tenant_slug": tenant_a.slug})).content
    assert b"Restore the business" in html


def test_a_locked_business_refuses_webhooks_and_sends_nothing(client, tenant_a, owner_a):
    channel = ChannelFactory(tenant=tenant_a)
    message = MessageFactory(tenant=tenant_a, conversation__channel=channel)
    schedule(tenant_a, owner_a)

    response = client.post(
        reverse("hook_sandbox", kwargs={"token": channel.webhook_token}),
        data="{}",
        content_type="application/json",
    )
    assert response.status_code == 410

    from privacy.gate import can_message

    tenant_a.refresh_from_db()
    with tenant_context(tenant_a):
        decision = can_message(message.conversation.contact, channel, "transactional")
    assert not decision.allowed and decision.reason == "business_locked"
    # Its Celery tasks do nothing.
    assert tasks.purge_tenant_expired(tenant_a.pk) is None


def test_an_owner_restores_during_the_grace_period(client, tenant_a, owner_a):
    schedule(tenant_a, owner_a)
    client.force_login(owner_a)

    response = client.post(
        reverse("privacy:deletion_restore", kwargs={"tenant_slug": tenant_a.slug})
    )

    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE and tenant_a.deletion_due_at is None
    assert (
        client.get(reverse("tenant:home", kwargs={"tenant_slug": tenant_a.slug})).status_code == 200
    )


def test_restoring_after_the_grace_period_is_refused(tenant_a, owner_a):
    schedule(tenant_a, owner_a, now=timezone.now() - timedelta(days=31))
    tenant_a.refresh_from_db()
    with pytest.raises(ValidationError):
        tenant_deletion.restore(tenant=tenant_a, by=owner_membership(tenant_a, owner_a))


def test_the_deletion_form_explains_a_wrong_address(client, tenant_a, owner_a):
    client.force_login(owner_a)
    url = reverse("privacy:deletion", kwargs={"tenant_slug": tenant_a.slug})

    response = client.post(url, {"confirm_slug": "nope"})

    assert response.status_code == 400
    assert "alpha-dental" in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.status == Tenant.Status.ACTIVE
    assert "90 days" in client.get(url).content.decode()  # the backup horizon is documented


def _rows_by_tenant(tenant_id: int) -> dict[str, int]:
    found = {}
    with platform_access(), connection.cursor() as cursor:
        for model in tenant_owned_models():
            cursor.execute(
                f'SELECT count(*) FROM "{model._meta.db_table}" WHERE tenant_id = %s', [tenant_id]
            )
            found[model._meta.label] = cursor.fetchone()[0]
    return found


def test_after_the_grace_period_no_row_of_the_business_remains(tenant_a, tenant_b, owner_a):
    for model in tenant_owned_models():
        factory = factory_for(model)
        assert factory is not None, f"tests/factories.py has no factory for {model.__name__}"
        factory(tenant=tenant_a)
        factory(tenant=tenant_b)
    upload = ContactImportFactory(tenant=tenant_a)
    assert default_storage.exists(upload.file.name)
    theirs_before = _rows_by_tenant(tenant_b.pk)
    mine_before = _rows_by_tenant(tenant_a.pk)
    assert all(mine_before.values()), mine_before  # the test really covers every model
    schedule(tenant_a, owner_a, now=timezone.now() - timedelta(days=31))

    assert tasks.purge_deleted_tenants() == 1

    assert set(_rows_by_tenant(tenant_a.pk).values()) == {0}
    assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
    assert not Membership.objects.filter(tenant_id=tenant_a.pk).exists()
    assert not default_storage.exists(upload.file.name)
    # People keep their own accounts.
    assert User.objects.filter(pk=owner_a.pk).exists()
    # The other business has everything it had.
    assert _rows_by_tenant(tenant_b.pk) == theirs_before
    # Running again finds nothing more to do.
    assert tasks.purge_deleted_tenants() == 0


def test_a_business_still_in_its_grace_period_is_not_purged(tenant_a, owner_a):
    channel = ChannelFactory(tenant=tenant_a)
    schedule(tenant_a, owner_a)

    assert tasks.purge_deleted_tenants() == 0

    with tenant_context(tenant_a):
        assert Channel.objects.filter(pk=channel.pk).exists()


def test_an_interrupted_tenant_purge_finishes_on_the_next_run(tenant_a, owner_a):
    for _ in range(5):
        MessageFactory(tenant=tenant_a)
    schedule(tenant_a, owner_a, now=timezone.now() - timedelta(days=31))
    tenant_a.refresh_from_db()
    # Part of the work was done before the worker died: some whole batches are gone.
    with tenant_context(tenant_a):
        Message.objects.filter(pk__in=Message.objects.values("pk")[:2]).delete()

    tenant_deletion.purge_tenant(tenant=tenant_a, batch_size=2)

    assert set(_rows_by_tenant(tenant_a.pk).values()) == {0}
    assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
