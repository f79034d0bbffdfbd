"""factory_boy factories. `FACTORY_FOR_MODEL` maps every model a URL can name to its factory,
so the generic isolation test can build one object of any kind in a given tenant."""

from __future__ import annotations

from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from channels_app.models import (
    AIUsage,
    BotProfile,
    BotRun,
    Channel,
    Conversation,
    InboundWebhook,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeTerm,
    Message,
    MessageStatusEvent,
    MessageTemplate,
    TokenBalance,
)
from crm.models import (
    Appointment,
    CalendarFeed,
    Company,
    Contact,
    ContactAttribute,
    ContactImport,
    ContactTag,
    Deal,
    DealStageChange,
    Lead,
    LeadSource,
    Note,
    Pipeline,
    Segment,
    Stage,
    Tag,
    Task,
)
from privacy.models import (
    AccessLogEntry,
    BusinessExport,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    DataRequest,
    Incident,
    MessagingPolicy,
    PurgeReport,
    Purpose,
    SecurityEvent,
)
from tenants.context import tenant_context
from tenants.models import ApiKey, Invitation, Membership, Role, Tenant, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)
    accepted_terms_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        """A verified primary e-mail address, as after allauth's mandatory verification."""
        self.save()
        if create and extracted is not False:
            EmailAddress.objects.get_or_create(
                user=self, email=self.email, defaults={"verified": True, "primary": True}
            )


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Business {n}")
    slug = factory.Sequence(lambda n: f"business-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class TenantOwnedFactory(factory.django.DjangoModelFactory):
    """Creates rows inside their tenant's context, as the application would."""

    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with tenant_context(kwargs["tenant"]):
            return super()._create(model_class, *args, **kwargs)


class InvitationFactory(TenantOwnedFactory):
    class Meta:
        model = Invitation

    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.AGENT
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ProbeParentFactory(TenantOwnedFactory):
    class Meta:
        model = "probe.ProbeParent"

    name = factory.Sequence(lambda n: f"parent {n}")


class ProbeChildFactory(TenantOwnedFactory):
    class Meta:
        model = "probe.ProbeChild"

    parent = factory.SubFactory(ProbeParentFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"child {n}")


class ProbeSecretFactory(TenantOwnedFactory):
    class Meta:
        model = "probe.ProbeSecret"

    label = "api"
    token = "s3cret-token"


def same_tenant(factory_class, **kwargs):
    """A SubFactory that builds the related row in the parent's tenant."""
    return factory.SubFactory(factory_class, tenant=factory.SelfAttribute("..tenant"), **kwargs)


class ContactFactory(TenantOwnedFactory):
    class Meta:
        model = Contact

    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"+1415555{n:04d}")
    source = Contact.Source.INBOUND


class ChannelFactory(TenantOwnedFactory):
    """A sandbox channel by default; `ChannelFactory(twilio=True)` / `(meta=True)` for others."""

    class Meta:
        model = Channel

    class Params:
        twilio = factory.Trait(
            kind=Channel.Kind.TWILIO_WHATSAPP,
            twilio_account_sid=factory.Sequence(lambda n: f"AC{n:032x}"),
            twilio_auth_token="twilio-auth-token-0123456789abcdef",
            twilio_from="+14155238886",
            sender="+14155238886",
        )
        twilio_sms = factory.Trait(
            kind=Channel.Kind.TWILIO_SMS,
            twilio_account_sid=factory.Sequence(lambda n: f"AC{n:032x}"),
            twilio_auth_token="twilio-auth-token-0123456789abcdef",
            twilio_from="+14155550100",
            sender="+14155550100",
        )
        meta = factory.Trait(
            kind=Channel.Kind.META_WHATSAPP,
            meta_phone_number_id=factory.Sequence(lambda n: f"10{n:013d}"),
            meta_business_account_id=factory.Sequence(lambda n: f"20{n:013d}"),
            meta_access_token="EAAG-meta-access-token",
            meta_app_secret="meta-app-secret-0123456789",
            meta_verify_token="meta-verify-token",
            sender="+15550001111",
        )

    kind = Channel.Kind.SANDBOX
    name = factory.Sequence(lambda n: f"Channel {n}")
    sandbox_secret = "sandbox-signing-secret"


class ConversationFactory(TenantOwnedFactory):
    class Meta:
        model = Conversation

    channel = same_tenant(ChannelFactory)
    contact = same_tenant(ContactFactory)


class MessageTemplateFactory(TenantOwnedFactory):
    class Meta:
        model = MessageTemplate

    channel = same_tenant(ChannelFactory)
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en"
    category = MessageTemplate.Category.UTILITY
    status = MessageTemplate.Status.APPROVED
    body = "Hello {{1}}, your order {{2}} is ready."
    variables = factory.LazyFunction(lambda: ["1", "2"])
    provider_template_id = factory.Sequence(lambda n: f"HX{n:032x}")


class MessageFactory(TenantOwnedFactory):
    """An inbound message by default."""

    class Meta:
        model = Message

    conversation = same_tenant(ConversationFactory)
    channel = factory.SelfAttribute("conversation.channel")
    direction = Message.Direction.INBOUND
    sender_kind = Message.SenderKind.CUSTOMER
    body = factory.Faker("sentence")
    status = Message.Status.RECEIVED
    provider_message_id = factory.Sequence(lambda n: f"SM{n:032x}")


class MessageStatusEventFactory(TenantOwnedFactory):
    class Meta:
        model = MessageStatusEvent

    message = same_tenant(
        MessageFactory,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.SENT,
    )
    channel = factory.SelfAttribute("message.channel")
    provider_message_id = factory.SelfAttribute("message.provider_message_id")
    status = Message.Status.DELIVERED
    provider_status = "delivered"


class InboundWebhookFactory(TenantOwnedFactory):
    class Meta:
        model = InboundWebhook

    channel = same_tenant(ChannelFactory)
    content_type = "application/json"
    body = '{"events": []}'


class ConsentEventFactory(TenantOwnedFactory):
    class Meta:
        model = ConsentEvent

    contact = same_tenant(ContactFactory)
    medium = "whatsapp"
    purpose = Purpose.MARKETING
    action = ConsentAction.GRANTED
    source = ConsentSource.AGENT
    evidence = "Agreed on the phone"


class ConsentStateFactory(TenantOwnedFactory):
    class Meta:
        model = ConsentState

    last_event = same_tenant(ConsentEventFactory)
    contact = factory.SelfAttribute("last_event.contact")
    medium = factory.SelfAttribute("last_event.medium")
    purpose = factory.SelfAttribute("last_event.purpose")
    action = factory.SelfAttribute("last_event.action")
    source = factory.SelfAttribute("last_event.source")
    changed_at = factory.LazyFunction(timezone.now)


class MessagingPolicyFactory(TenantOwnedFactory):
    class Meta:
        model = MessagingPolicy
        django_get_or_create = ("tenant",)  # one per business

    extra_opt_out_keywords = "BASTA"


# --- CRM ------------------------------------------------------------------------------------


class CompanyFactory(TenantOwnedFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    domain = factory.Sequence(lambda n: f"company{n}.example")


class TagFactory(TenantOwnedFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag-{n}")


class ContactTagFactory(TenantOwnedFactory):
    class Meta:
        model = ContactTag

    contact = same_tenant(ContactFactory)
    tag = same_tenant(TagFactory)


class ContactAttributeFactory(TenantOwnedFactory):
    class Meta:
        model = ContactAttribute

    key = factory.Sequence(lambda n: f"attr_{n}")
    label = factory.Sequence(lambda n: f"Attribute {n}")
    kind = ContactAttribute.Kind.TEXT


class SegmentFactory(TenantOwnedFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    filters = factory.LazyFunction(lambda: {"stage": "lead"})


class PipelineFactory(TenantOwnedFactory):
    class Meta:
        model = Pipeline

    name = factory.Sequence(lambda n: f"Pipeline {n}")


class StageFactory(TenantOwnedFactory):
    class Meta:
        model = Stage

    pipeline = same_tenant(PipelineFactory)
    name = factory.Sequence(lambda n: f"Stage {n}")
    position = factory.Sequence(lambda n: n)


class DealFactory(TenantOwnedFactory):
    class Meta:
        model = Deal

    stage = same_tenant(StageFactory)
    pipeline = factory.SelfAttribute("stage.pipeline")
    title = factory.Sequence(lambda n: f"Deal {n}")
    value = 1000
    currency = "USD"


class DealStageChangeFactory(TenantOwnedFactory):
    class Meta:
        model = DealStageChange

    deal = same_tenant(DealFactory)
    to_stage = factory.SelfAttribute("deal.stage")


class TaskFactory(TenantOwnedFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Task {n}")
    contact = same_tenant(ContactFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class NoteFactory(TenantOwnedFactory):
    class Meta:
        model = Note

    body = factory.Faker("sentence")
    contact = same_tenant(ContactFactory)


class AppointmentFactory(TenantOwnedFactory):
    class Meta:
        model = Appointment

    title = factory.Sequence(lambda n: f"Appointment {n}")
    contact = same_tenant(ContactFactory)
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(minutes=30))


class CalendarFeedFactory(TenantOwnedFactory):
    class Meta:
        model = CalendarFeed

    user = factory.SubFactory(UserFactory)


class ContactImportFactory(TenantOwnedFactory):
    class Meta:
        model = ContactImport

    file = factory.django.FileField(filename="contacts.csv", data=b"name,phone\nAna,+14155550199\n")
    original_name = "contacts.csv"
    headers = factory.LazyFunction(lambda: ["name", "phone"])


class LeadSourceFactory(TenantOwnedFactory):
    class Meta:
        model = LeadSource

    kind = LeadSource.Kind.GOOGLE_ADS
    name = factory.Sequence(lambda n: f"Lead form {n}")
    google_key = "google-lead-form-key"


class LeadFactory(TenantOwnedFactory):
    class Meta:
        model = Lead

    source = same_tenant(LeadSourceFactory)
    external_id = factory.Sequence(lambda n: f"lead-{n}")
    fields = factory.LazyFunction(lambda: {"full_name": "Ana", "phone_number": "+14155550123"})


# --- Bot ------------------------------------------------------------------------------------


class BotProfileFactory(TenantOwnedFactory):
    class Meta:
        model = BotProfile
        django_get_or_create = ("tenant", "channel")  # one default profile per business

    channel = None
    enabled = True
    instructions = "Answer questions about the shop."


class KnowledgeDocumentFactory(TenantOwnedFactory):
    class Meta:
        model = KnowledgeDocument

    title = factory.Sequence(lambda n: f"Document {n}")
    content = "We open at nine and close at six. Delivery takes two days."


class KnowledgeChunkFactory(TenantOwnedFactory):
    class Meta:
        model = KnowledgeChunk

    document = same_tenant(KnowledgeDocumentFactory)
    position = factory.Sequence(lambda n: n)
    text = factory.SelfAttribute("document.content")


class KnowledgeTermFactory(TenantOwnedFactory):
    class Meta:
        model = KnowledgeTerm

    lexeme = factory.Sequence(lambda n: f"word{n}")
    chunks = 1


class TokenBalanceFactory(TenantOwnedFactory):
    class Meta:
        model = TokenBalance
        django_get_or_create = ("tenant",)  # one per business

    tokens_remaining = 100_000


class AIUsageFactory(TenantOwnedFactory):
    class Meta:
        model = AIUsage

    provider = "openai"
    model = "gpt-4o-mini"
    tokens_in = 120
    tokens_out = 40


class BotRunFactory(TenantOwnedFactory):
    class Meta:
        model = BotRun

    inbound_message = same_tenant(MessageFactory)
    conversation = factory.SelfAttribute("inbound_message.conversation")
    outcome = BotRun.Outcome.ANSWERED


class AccessLogEntryFactory(TenantOwnedFactory):
    class Meta:
        model = AccessLogEntry

    action = AccessLogEntry.Action.VIEWED_CONTACT
    actor_label = "agent@example.com"


class DataRequestFactory(TenantOwnedFactory):
    class Meta:
        model = DataRequest

    kind = DataRequest.Kind.EXPORT
    status = DataRequest.Status.AWAITING_CONFIRMATION
    subject_phone = factory.Sequence(lambda n: f"+1415666{n:04d}")
    due_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=9))


class BusinessExportFactory(TenantOwnedFactory):
    """A ready export of the whole business, its file stored and its link still valid."""

    class Meta:
        model = BusinessExport

    status = BusinessExport.Status.READY
    file = factory.django.FileField(filename="business-export.zip", data=b"PK\x05\x06" + b"\0" * 18)
    rows = 1
    size = 22
    finished_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ApiKeyFactory(TenantOwnedFactory):
    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"Key {n}")
    prefix = factory.Sequence(lambda n: f"sos_{n:06d}")
    key_hash = factory.Sequence(lambda n: f"{n:064x}")


class PurgeReportFactory(TenantOwnedFactory):
    class Meta:
        model = PurgeReport

    status = PurgeReport.Status.COMPLETE
    counts = factory.LazyFunction(lambda: {"messages": {"channels_app.Message": 3}})
    finished_at = factory.LazyFunction(timezone.now)


class SecurityEventFactory(TenantOwnedFactory):
    class Meta:
        model = SecurityEvent

    kind = SecurityEvent.Kind.FORGED_WEBHOOK
    detail = "bad signature"
    ip_address = "203.0.113.9"


class IncidentFactory(TenantOwnedFactory):
    class Meta:
        model = Incident

    title = factory.Sequence(lambda n: f"Incident {n}")
    detected_at = factory.LazyFunction(timezone.now)
    notify_by = factory.LazyAttribute(lambda o: o.detected_at + timedelta(hours=72))


# Every model a URL can name, and every tenant-owned model, has a factory here: the generic
# isolation tests build one object of each kind per tenant from this table.
FACTORY_FOR_MODEL = {
    Membership: MembershipFactory,
    Invitation: InvitationFactory,
    "probe.ProbeParent": ProbeParentFactory,
    "probe.ProbeChild": ProbeChildFactory,
    "probe.ProbeSecret": ProbeSecretFactory,
    Contact: ContactFactory,
    Channel: ChannelFactory,
    Conversation: ConversationFactory,
    Message: MessageFactory,
    MessageTemplate: MessageTemplateFactory,
    MessageStatusEvent: MessageStatusEventFactory,
    InboundWebhook: InboundWebhookFactory,
    ConsentEvent: ConsentEventFactory,
    ConsentState: ConsentStateFactory,
    MessagingPolicy: MessagingPolicyFactory,
    Company: CompanyFactory,
    Tag: TagFactory,
    ContactTag: ContactTagFactory,
    ContactAttribute: ContactAttributeFactory,
    Segment: SegmentFactory,
    Pipeline: PipelineFactory,
    Stage: StageFactory,
    Deal: DealFactory,
    DealStageChange: DealStageChangeFactory,
    Task: TaskFactory,
    Note: NoteFactory,
    Appointment: AppointmentFactory,
    CalendarFeed: CalendarFeedFactory,
    ContactImport: ContactImportFactory,
    LeadSource: LeadSourceFactory,
    Lead: LeadFactory,
    BotProfile: BotProfileFactory,
    KnowledgeDocument: KnowledgeDocumentFactory,
    KnowledgeChunk: KnowledgeChunkFactory,
    KnowledgeTerm: KnowledgeTermFactory,
    TokenBalance: TokenBalanceFactory,
    AIUsage: AIUsageFactory,
    BotRun: BotRunFactory,
    AccessLogEntry: AccessLogEntryFactory,
    DataRequest: DataRequestFactory,
    BusinessExport: BusinessExportFactory,
    ApiKey: ApiKeyFactory,
    PurgeReport: PurgeReportFactory,
    SecurityEvent: SecurityEventFactory,
    Incident: IncidentFactory,
}


def factory_for(model) -> type[factory.django.DjangoModelFactory] | None:
    """The factory of a model class (or "app_label.ModelName")."""
    label = model if isinstance(model, str) else model._meta.label
    for key, value in FACTORY_FOR_MODEL.items():
        if key == label or (not isinstance(key, str) and key._meta.label == label):
            return value
    return None


def member(tenant: Tenant, role: str = Role.OWNER, **user_fields) -> User:
    """A user who belongs to `tenant` with `role`."""
    user = UserFactory(**user_fields)
    MembershipFactory(tenant=tenant, user=user, role=role)
    return user
