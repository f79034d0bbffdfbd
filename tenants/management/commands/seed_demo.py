"""Seed a demo business with a printed login: `manage.py seed_demo [--with-admin]`.

Idempotent: running it again leaves the same business, people and passwords. Later features add
their demo data as further steps of `Command.seed`.

The messaging demo is a sandbox channel with a few conversations. Customers' messages arrive
as signed sandbox webhooks through the inbound pipeline and replies go out through
`send_message`, exactly as in use; a conversation that already exists is left as it is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from channels_app.bot.demo import seed_bot
from crm.demo_contacts import seed_contacts
from crm.demo_deals import seed_deals_and_calendar
from crm.demo_leads import seed_leads
from privacy.demo_privacy import seed_privacy
from privacy.demo_requests import seed_data_requests
from tenants import services
from tenants.context import tenant_context
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
        # Outside the transaction: each reply is delivered (in-process under `make run`) as
        # soon as it is queued, so the phone's delivered/read reports find it sent.
        with tenant_context(tenant):
            channel = seed_messaging(tenant=tenant)
            seed_contacts(tenant=tenant)
            seed_deals_and_calendar(tenant=tenant, channel=channel)
            seed_data_requests(tenant=tenant)
            seed_leads(tenant=tenant, owner=User.objects.get(email=OWNER_EMAIL))
            seed_privacy(tenant=tenant)
            seed_bot(tenant=tenant)
        self.report(tenant, admin_password, channel)

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

    def report(self, tenant: Tenant, admin_password: str | None, channel=None) -> None:
        base = settings.PUBLIC_BASE_URL
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo business ready: {tenant.name}"))
        out.write(f"  Open:   {base}/app/{tenant.slug}/")
        out.write(f"  Owner:  {OWNER_EMAIL} / {DEMO_PASSWORD}")
        out.write(f"  Agent:  {AGENT_EMAIL} / {DEMO_PASSWORD}")
        if channel is not None:
            simulator = reverse(
                "channels:simulator", kwargs={"tenant_slug": tenant.slug, "channel_id": channel.pk}
            )
            out.write(f"  Phone simulator (write as a customer): {base}{simulator}")
        if admin_password:
            out.write(f"  Admin:  {base}/admin/  {ADMIN_EMAIL} / {admin_password}")


# --- Messaging demo ----------------------------------------------------------------------------

SANDBOX_NAME = "Sandbox"


@dataclass(frozen=True)
class DemoMessage:
    inbound: bool
    body: str
    by_owner: bool = False  # replies: the agent writes them unless the owner does


@dataclass(frozen=True)
class DemoConversation:
    key: str
    name: str
    phone: str  # the fictional 555-01xx range
    messages: tuple[DemoMessage, ...]
    assigned_to_agent: bool = False
    resolved: bool = False
    # How long ago it happened; over 24 hours puts it outside WhatsApp's reply window.
    ago: timedelta = timedelta(0)
    shown_on_phone: bool = True  # the customer's phone reported the replies delivered and read
    # Consent the team recorded (so a template can still reach them outside the window).
    consent_evidence: str = ""


DEMO_CONVERSATIONS = (
    DemoConversation(
        key="maria",
        name="Maria Garcia",
        phone="+15555550101",
        messages=(
            DemoMessage(True, "Hi! Do you have any appointments this Friday for a cleaning?"),
        ),
    ),
    DemoConversation(
        key="james",
        name="James Wilson",
        phone="+15555550102",
        assigned_to_agent=True,
        ago=timedelta(minutes=40),
        messages=(
            DemoMessage(True, "Hello, my crown feels a bit loose. Can someone look at it?"),
            DemoMessage(
                False,
                "Sorry to hear that, James. We can see you tomorrow at 9:30. Does that work?",
            ),
            DemoMessage(True, "Yes, perfect. Thank you!"),
        ),
    ),
    DemoConversation(
        key="priya",
        name="Priya Patel",
        phone="+15555550103",
        resolved=True,
        ago=timedelta(hours=5),
        messages=(
            DemoMessage(True, "What are your opening hours on Saturday?"),
            DemoMessage(False, "We are open from 9:00 to 13:00 on Saturdays.", by_owner=True),
            DemoMessage(True, "Great, thanks!"),
        ),
    ),
    DemoConversation(
        key="tom",
        name="Tom Becker",
        phone="+15555550104",
        ago=timedelta(days=3),
        consent_evidence="Signed the consent form for appointment messages at the front desk.",
        messages=(
            DemoMessage(True, "How much is teeth whitening?"),
            DemoMessage(
                False,
                "Hi Tom, whitening starts at $250 per session. Would you like to book one?",
            ),
        ),
    ),
)


def seed_messaging(*, tenant: Tenant):
    """A sandbox channel with a few conversations (the active tenant must be `tenant`)."""
    channel = _ensure_sandbox_channel()
    owner = User.objects.get(email__iexact=OWNER_EMAIL)
    agent = User.objects.get(email__iexact=AGENT_EMAIL)
    for demo in DEMO_CONVERSATIONS:
        _seed_conversation(channel=channel, demo=demo, owner=owner, agent=agent)
    return channel


def _ensure_sandbox_channel():
    from channels_app.models import Channel
    from channels_app.providers.sandbox import ensure_secret
    from channels_app.services.channels import create_channel, sync_templates

    channel = Channel.objects.filter(kind=Channel.Kind.SANDBOX, name=SANDBOX_NAME).first()
    if channel is None:
        channel = create_channel(kind=Channel.Kind.SANDBOX, name=SANDBOX_NAME)
    ensure_secret(channel)
    # The sandbox's approved templates, so the "outside the window" path can be tried.
    sync_templates(channel=channel)
    return channel


def _seed_conversation(*, channel, demo: DemoConversation, owner, agent) -> None:
    from channels_app.models import Conversation, Message
    from channels_app.providers.sandbox import signed_request
    from channels_app.services import conversations
    from channels_app.services.inbound import receive_webhook
    from channels_app.services.sending import send_message

    if Conversation.objects.filter(channel=channel, contact__phone=demo.phone).exists():
        return  # seeded before (and perhaps worked on since): leave it alone
    sent = []
    for index, item in enumerate(demo.messages):
        if item.inbound:
            event = {
                "type": "message",
                "id": f"sbx-in-demo-{demo.key}-{index}",
                "from": demo.phone,
                "name": demo.name,
                "body": item.body,
            }
            receive_webhook(channel=channel, request=signed_request(channel, [event]))
        else:
            conversation = Conversation.objects.get(channel=channel, contact__phone=demo.phone)
            # Whoever answers has read the thread first.
            conversations.mark_read(conversation=conversation)
            sent.append(
                send_message(
                    conversation=conversation,
                    body=item.body,
                    purpose="transactional",
                    sender_kind=Message.SenderKind.AGENT,
                    author=owner if item.by_owner else agent,
                    idempotency_key=f"demo-seed:{demo.key}:{index}",
                )
            )
    conversation = Conversation.objects.get(channel=channel, contact__phone=demo.phone)
    if demo.shown_on_phone:
        _phone_displays(channel, sent)
    if demo.assigned_to_agent:
        conversations.assign(conversation=conversation, assignee=agent)
    if demo.consent_evidence:
        conversations.record_contact_consent(
            contact=conversation.contact,
            medium=channel.medium,
            purposes="transactional",
            action="granted",
            evidence=demo.consent_evidence,
            recorded_by=owner,
            channel=channel,
        )
    if demo.resolved:
        conversations.mark_read(conversation=conversation)
        conversations.resolve(conversation=conversation)
    if demo.ago:
        _move_back_in_time(conversation, by=demo.ago)


def _phone_displays(channel, sent) -> None:
    """The customer's phone reports the replies delivered and read, as the simulator does."""
    from channels_app.models import Message
    from channels_app.providers.sandbox import signed_request
    from channels_app.services.inbound import receive_webhook

    ids = [
        pid
        for pid in Message.objects.filter(pk__in=[m.pk for m in sent]).values_list(
            "provider_message_id", flat=True
        )
        if pid
    ]
    if not ids:
        return  # delivery runs in a worker: the phone reports once it is sent
    events = [
        {"type": "status", "id": pid, "status": status}
        for pid in ids
        for status in ("delivered", "read")
    ]
    receive_webhook(channel=channel, request=signed_request(channel, events))


def _move_back_in_time(conversation, *, by: timedelta) -> None:
    """Demo history only: the conversation happened a while ago (a closed window, say).

    No service rewrites history, so the timestamps are shifted directly, keeping the order of
    the messages.
    """
    from django.db.models import F

    from channels_app.models import Conversation, Message

    shift = by
    Message.objects.filter(conversation=conversation).update(
        **{
            name: F(name) - shift
            for name in ("created_at", "status_changed_at", "sent_at", "delivered_at", "read_at")
        }
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=F("last_inbound_at") - shift,
        last_message_at=F("last_message_at") - shift,
        created_at=F("created_at") - shift,
        resolved_at=F("resolved_at") - shift,
    )
