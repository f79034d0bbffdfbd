"""State changes for tenants, memberships and invitations: one function per action."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from tenants.context import tenant_context
from tenants.models import (
    RESERVED_SLUGS,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
    slug_validator,
    validate_slug_not_reserved,
)

log = logging.getLogger(__name__)

INVITATION_SALT = "tenants.invitation"


# --- Tenants ----------------------------------------------------------------------------------


def suggest_slug(name: str) -> str:
    """A free slug derived from the business name ("Acme Dental" -> "acme-dental", "-2" …)."""
    base = slugify(name)[:44].strip("-") or "business"
    if len(base) < 3:
        base = f"{base}-biz"
    candidate, n = base, 1
    while candidate in RESERVED_SLUGS or Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def validate_slug(slug: str) -> None:
    slug_validator(slug)
    validate_slug_not_reserved(slug)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError(_("That address is taken; choose another."), code="slug_taken")


@transaction.atomic
def create_tenant(
    *, name: str, owner: User, slug: str | None = None, time_zone: str = "UTC", language="en"
) -> Tenant:
    """Create a business with `owner` as its first owner."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give your business a name.")})
    if slug:
        validate_slug(slug)
    tenant = Tenant(
        name=name, slug=slug or suggest_slug(name), time_zone=time_zone, language=language
    )
    tenant.full_clean()
    for attempt in range(3):
        try:
            with transaction.atomic():
                tenant.save()
            break
        except IntegrityError as exc:  # a concurrent sign-up took the slug a moment ago
            if slug or attempt == 2:
                raise ValidationError(
                    {"slug": _("That address is taken; choose another.")}
                ) from exc
            tenant.slug = suggest_slug(name)  # a derived address: simply take the next free one
    Membership.objects.create(
        tenant=tenant, user=owner, role=Role.OWNER, last_used_at=timezone.now()
    )
    log.info("tenant created id=%s slug=%s", tenant.pk, tenant.slug)
    return tenant


def update_tenant_settings(*, tenant: Tenant, **fields) -> Tenant:
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save(update_fields=list(fields))
    return tenant


def touch_membership(*, membership: Membership) -> None:
    """Remember when a person last opened this business (the switcher's order)."""
    now = timezone.now()
    if membership.last_used_at is None or now - membership.last_used_at > timedelta(minutes=5):
        Membership.objects.filter(pk=membership.pk).update(last_used_at=now)
        membership.last_used_at = now


# --- Members ----------------------------------------------------------------------------------


class MembershipError(ValidationError):
    pass


def _lock_owners(tenant: Tenant) -> int:
    # Lock the tenant's owner rows so two concurrent demotions cannot both pass the check.
    owners = list(
        Membership.objects.select_for_update().filter(tenant=tenant, role=Role.OWNER).values("pk")
    )
    return len(owners)


@transaction.atomic
def change_role(*, membership: Membership, role: str, by: Membership) -> Membership:
    if role not in Role.values:
        raise MembershipError(_("Unknown role."))
    if membership.tenant_id != by.tenant_id:
        raise MembershipError(_("This person is not a member of this business."))
    if not by.has_role(Role.ADMIN):
        raise MembershipError(_("Only owners and admins can change roles."))
    if Role.OWNER in (role, membership.role) and not by.is_owner:
        raise MembershipError(_("Only an owner can grant or take away the owner role."))
    if membership.role == Role.OWNER and role != Role.OWNER and _lock_owners(by.tenant) <= 1:
        raise MembershipError(_("A business needs at least one owner; appoint another first."))
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, by: Membership) -> None:
    if membership.tenant_id != by.tenant_id:
        raise MembershipError(_("This person is not a member of this business."))
    if membership.pk != by.pk and not by.has_role(Role.ADMIN):
        raise MembershipError(_("Only owners and admins can remove members."))
    if membership.role == Role.OWNER:
        if not by.is_owner:
            raise MembershipError(_("Only an owner can remove an owner."))
        if _lock_owners(by.tenant) <= 1:
            raise MembershipError(
                _("The last owner cannot be removed; appoint another owner first.")
            )
    membership.delete()


# --- Invitations ------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "t": invitation.tenant_id}, salt=INVITATION_SALT)


def invitation_url(invitation: Invitation) -> str:
    path = reverse("tenants:invitation", kwargs={"token": invitation_token(invitation)})
    return f"{settings.PUBLIC_BASE_URL}{path}"


@transaction.atomic
def invite_member(*, tenant: Tenant, email: str, role: str, by: Membership) -> Invitation:
    """Create and e-mail an invitation. Re-inviting the same address replaces the open one."""
    email = User.objects.normalize_email(email).strip()
    if by.tenant_id != tenant.pk or not by.has_role(Role.ADMIN):
        raise MembershipError(_("Only owners and admins can invite people."))
    if role not in Role.values:
        raise MembershipError(_("Unknown role."))
    if role == Role.OWNER and not by.is_owner:
        raise MembershipError(_("Only an owner can invite another owner."))
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise MembershipError(_("%(email)s is already a member.") % {"email": email})
    with tenant_context(tenant):
        Invitation.objects.filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            invited_by=by.user,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
        )
    from tenants.tasks import send_invitation_email as task

    transaction.on_commit(lambda: task.delay(tenant.pk, invitation.pk))
    return invitation


def send_invitation_email(*, invitation_id: int) -> bool:
    """E-mail an open invitation of the active tenant; a no-op for one already used or revoked."""
    invitation = (
        Invitation.objects.select_related("tenant", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.state != "pending":
        return False
    body = render_to_string(
        "tenants/email/invitation.txt",
        {
            "invitation": invitation,
            "tenant": invitation.tenant,
            "url": invitation_url(invitation),
            "inviter": invitation.invited_by,
        },
    )
    send_mail(
        _("You are invited to join %(name)s on Sales OS") % {"name": invitation.tenant.name},
        body,
        None,
        [invitation.email],
    )
    return True


def revoke_invitation(*, invitation: Invitation) -> None:
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


class InvitationInvalid(Exception):
    """A link that is tampered with, expired, revoked or already used; the message says which.

    `reason` is one of "invalid", "expired", "used", "revoked", "wrong_user" (the views map it to
    an HTTP status).
    """

    def __init__(self, message: str, *, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


def invitation_from_token(token: str) -> Invitation:
    """Load the invitation a link names, activating nothing; raises InvitationInvalid."""
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvitationInvalid(
            _("This invitation has expired. Ask for a new one."), reason="expired"
        ) from exc
    except signing.BadSignature as exc:
        raise InvitationInvalid(_("This invitation link is not valid.")) from exc
    if not isinstance(payload, dict):
        raise InvitationInvalid(_("This invitation link is not valid."))
    tenant = Tenant.objects.filter(pk=payload.get("t")).first()
    if tenant is None:
        raise InvitationInvalid(_("This invitation link is not valid."))
    with tenant_context(tenant):
        invitation = Invitation.objects.select_related("tenant").filter(pk=payload.get("i")).first()
    if invitation is None:
        raise InvitationInvalid(_("This invitation link is not valid."))
    _check_open(invitation)
    return invitation


def _check_open(invitation: Invitation) -> None:
    state = invitation.state
    if state == "accepted":
        raise InvitationInvalid(_("This invitation has already been used."), reason="used")
    if state == "revoked":
        raise InvitationInvalid(_("This invitation was withdrawn."), reason="revoked")
    if state == "expired":
        raise InvitationInvalid(
            _("This invitation has expired. Ask for a new one."), reason="expired"
        )


@transaction.atomic
def accept_invitation(*, token: str, user: User) -> Membership:
    invitation = invitation_from_token(token)
    if invitation.email.lower() != user.email.lower():
        raise InvitationInvalid(
            _("This invitation was sent to %(email)s; sign in with that address to accept it.")
            % {"email": invitation.email},
            reason="wrong_user",
        )
    tenant = invitation.tenant
    with tenant_context(tenant):
        # Single use, even when two tabs accept at once: the row is locked and re-checked.
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        _check_open(locked)
        locked.accepted_at = timezone.now()
        locked.accepted_by = user
        locked.save(update_fields=["accepted_at", "accepted_by"])
    membership, created = Membership.objects.get_or_create(
        tenant=tenant, user=user, defaults={"role": invitation.role, "last_used_at": timezone.now()}
    )
    # Already a member: keep the higher of the two roles.
    if not created and not membership.has_role(invitation.role):
        membership.role = invitation.role
        membership.save(update_fields=["role"])
    return membership
