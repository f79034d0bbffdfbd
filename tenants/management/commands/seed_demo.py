"""Seed a demo business with a printed login: `manage.py seed_demo [--with-admin]`.

Idempotent: running it again leaves the same business, people and passwords. Later features add
their demo data (channels, contacts, conversations) as further steps of `Command.seed`.
"""

from __future__ import annotations

import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tenants import services
from tenants.models import Membership, Role, Tenant, User

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Dental Clinic"
DEMO_PASSWORD = "demo-password-123"
OWNER_EMAIL = "demo@example.com"
AGENT_EMAIL = "agent@example.com"
ADMIN_EMAIL = "admin@example.com"


def ensure_user(*, email: str, password: str, full_name: str = "", **flags) -> User:
    """The user with this address, with this password and a verified primary e-mail address."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(email=email)
    user.full_name = user.full_name or full_name
    user.accepted_terms_at = user.accepted_terms_at or timezone.now()
    user.is_active = True
    for name, value in flags.items():
        setattr(user, name, value)
    user.set_password(password)
    user.save()
    address, _ = EmailAddress.objects.get_or_create(
        user=user, email__iexact=email, defaults={"email": email}
    )
    if not (address.verified and address.primary):
        address.verified = True
        address.primary = True
        address.save(update_fields=["verified", "primary"])
    EmailAddress.objects.filter(user=user).exclude(pk=address.pk).update(primary=False)
    return user


def ensure_member(*, tenant: Tenant, user: User, role: str) -> Membership:
    membership, created = Membership.objects.get_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


class Command(BaseCommand):
    help = "Create (or refresh) the demo business “Demo Dental Clinic” with a printed login."

    def add_arguments(self, parser):
        parser.add_argument(
            "--with-admin",
            action="store_true",
            help=f"Also create a platform superuser {ADMIN_EMAIL} for the Django admin "
            "(a new random password is printed on every run).",
        )

    def handle(self, *args, with_admin=False, **options):
        with transaction.atomic():
            tenant = self.seed()
            admin_password = self.seed_admin() if with_admin else None
        self.report(tenant, admin_password)

    def seed(self) -> Tenant:
        owner = ensure_user(email=OWNER_EMAIL, password=DEMO_PASSWORD, full_name="Dana Demo")
        agent = ensure_user(email=AGENT_EMAIL, password=DEMO_PASSWORD, full_name="Alex Agent")
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = services.create_tenant(
                name=DEMO_NAME, slug=DEMO_SLUG, owner=owner, time_zone="Europe/London"
            )
        ensure_member(tenant=tenant, user=owner, role=Role.OWNER)
        ensure_member(tenant=tenant, user=agent, role=Role.AGENT)
        return tenant

    def seed_admin(self) -> str:
        password = secrets.token_urlsafe(12)
        ensure_user(
            email=ADMIN_EMAIL,
            password=password,
            full_name="Platform Admin",
            is_staff=True,
            is_superuser=True,
        )
        return password

    def report(self, tenant: Tenant, admin_password: str | None) -> None:
        base = settings.PUBLIC_BASE_URL
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo business ready: {tenant.name}"))
        out.write(f"  Open:   {base}/app/{tenant.slug}/")
        out.write(f"  Owner:  {OWNER_EMAIL} / {DEMO_PASSWORD}")
        out.write(f"  Agent:  {AGENT_EMAIL} / {DEMO_PASSWORD}")
        if admin_password:
            out.write(f"  Admin:  {base}/admin/  {ADMIN_EMAIL} / {admin_password}")
