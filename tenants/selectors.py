"""Reads for tenants, memberships and invitations."""

from __future__ import annotations

from django.db.models import F, Q

from tenants.models import Invitation, Membership, Tenant, User


def membership_for(*, user: User, tenant_slug: str) -> Membership | None:
    return (
        Membership.objects.select_related("tenant")
        .filter(user=user, tenant__slug=tenant_slug)
        .first()
    )


def memberships_of(*, user: User) -> list[Membership]:
    """A person's businesses, most recently used first (the tenant switcher)."""
    return list(
        Membership.objects.select_related("tenant")
        .filter(user=user)
        .order_by(F("last_used_at").desc(nulls_last=True), "tenant__name")
    )


def members_of(*, tenant: Tenant) -> list[Membership]:
    return list(
        Membership.objects.select_related("user").filter(tenant=tenant).order_by("user__email")
    )


def pending_invitations() -> list[Invitation]:
    """Open invitations of the active tenant."""
    return list(Invitation.objects.pending().select_related("invited_by"))


def pending_invitations_for(*, user: User) -> list[Invitation]:
    """Open invitations, in any business, addressed to one of the person's verified addresses."""
    from allauth.account.models import EmailAddress

    from tenants.context import platform_access

    emails = list(
        EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    )
    if not emails:
        return []
    query = Q()
    for email in emails:
        query |= Q(email__iexact=email)
    with platform_access():
        return list(
            Invitation.unscoped.pending()
            .filter(query)
            .exclude(tenant__memberships__user=user)
            .select_related("tenant")
        )
