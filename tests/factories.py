"""factory_boy factories. `FACTORY_FOR_MODEL` maps every model a URL can name to its factory,
so the generic isolation test can build one object of any kind in a given tenant."""

from __future__ import annotations

from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import Invitation, Membership, Role, Tenant, User

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


# Every model a URL can name, and every tenant-owned model, has a factory here: the generic
# isolation tests build one object of each kind per tenant from this table.
FACTORY_FOR_MODEL = {
    Membership: MembershipFactory,
    Invitation: InvitationFactory,
    "probe.ProbeParent": ProbeParentFactory,
    "probe.ProbeChild": ProbeChildFactory,
    "probe.ProbeSecret": ProbeSecretFactory,
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
