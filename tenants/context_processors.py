from django.conf import settings

from tenants.models import Role
from tenants.permissions import has_role
from tenants.selectors import memberships_of


def tenancy(request):
    """The active business, the person's role and their other businesses (the switcher)."""
    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)

    def switcher():
        if user is None or not user.is_authenticated:
            return []
        return memberships_of(user=user)

    return {
        "tenant": getattr(request, "tenant", None),
        "membership": membership,
        "is_tenant_admin": has_role(membership, Role.ADMIN),
        "is_tenant_owner": has_role(membership, Role.OWNER),
        "my_memberships": switcher,
        "google_login_enabled": settings.GOOGLE_LOGIN_ENABLED,
    }
