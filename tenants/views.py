"""Account-level pages, the tenant home, team management and the error pages. Views stay thin:
the work is in tenants.services, the reads in tenants.selectors."""

from __future__ import annotations

import copy
import logging

from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import resolve, reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from tenants import selectors, services
from tenants.forms import InviteForm, NewTenantForm, RoleForm, TenantSettingsForm
from tenants.models import Invitation, Membership, Role
from tenants.permissions import tenant_view

log = logging.getLogger(__name__)

# --- Outside a business -----------------------------------------------------------------------


def landing(request):
    if request.user.is_authenticated:
        return redirect("tenants:home")
    return render(request, "landing.html")


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@login_required
def home(request):
    """Send a person to the business they used last, or to create their first one."""
    memberships = selectors.memberships_of(user=request.user)
    if not memberships:
        return redirect("tenants:new")
    return redirect("tenant:home", tenant_slug=memberships[0].tenant.slug)


@login_required
def new_tenant(request):
    form = NewTenantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = services.create_tenant(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"] or None,
                time_zone=form.cleaned_data["time_zone"],
                owner=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("%(name)s is ready.") % {"name": tenant.name})
            return redirect("tenant:home", tenant_slug=tenant.slug)
    invitations = [
        {"invitation": inv, "url": services.invitation_url(inv)}
        for inv in selectors.pending_invitations_for(user=request.user)
    ]
    return render(
        request,
        "tenants/new_tenant.html",
        {
            "form": form,
            "invitations": invitations,
            "first_business": not request.user.memberships.exists(),
        },
    )


# A tampered link names nothing (404); a wrong account is refused (403); the rest are gone (410).
_INVITATION_STATUS = {"invalid": 404, "wrong_user": 403}


def _invitation_problem(request, exc: services.InvitationInvalid) -> HttpResponse:
    return render(
        request,
        "tenants/invitation_invalid.html",
        {"reason": str(exc), "wrong_user": exc.reason == "wrong_user"},
        status=_INVITATION_STATUS.get(exc.reason, 410),
    )


def invitation(request, token: str):
    """An invitation link: accept it when signed in as the invited address, else sign in first."""
    try:
        invitation = services.invitation_from_token(token)
    except services.InvitationInvalid as exc:
        return _invitation_problem(request, exc)

    context = {"invitation": invitation, "token": token}
    if not request.user.is_authenticated:
        # The link arrived by e-mail, so it proves the address: signing up with it needs no
        # second verification mail, and the sign-up form joins the business (tenants.forms).
        request.session["invitation_token"] = token
        get_adapter(request).stash_verified_email(request, invitation.email)
        return render(request, "tenants/invitation.html", context)

    if request.method == "POST":
        try:
            membership = services.accept_invitation(token=token, user=request.user)
        except services.InvitationInvalid as exc:
            return _invitation_problem(request, exc)
        request.session.pop("invitation_token", None)
        messages.success(request, _("Welcome to %(name)s.") % {"name": membership.tenant.name})
        return redirect("tenant:home", tenant_slug=membership.tenant.slug)
    context["wrong_user"] = invitation.email.lower() != request.user.email.lower()
    return render(request, "tenants/invitation.html", context)


# --- Inside a business ------------------------------------------------------------------------

SECTIONS = {
    "inbox": (gettext_lazy("Inbox"), 3),
    "contacts": (gettext_lazy("Contacts"), 4),
    "deals": (gettext_lazy("Deals"), 4),
    "calendar": (gettext_lazy("Calendar"), 4),
    "campaigns": (gettext_lazy("Campaigns"), 4),
    "bot": (gettext_lazy("Bot"), 5),
    "channels": (gettext_lazy("Channels"), 3),
    "privacy": (gettext_lazy("Privacy"), 6),
}


def section_placeholder(section: str):
    """A dashboard section whose work has not landed yet says so plainly."""
    title, issue = SECTIONS[section]

    @tenant_view(Role.AGENT)
    def view(request):
        return render(
            request,
            "section_placeholder.html",
            {"section": section, "title": title, "issue": issue},
        )

    view.__name__ = f"{section}_placeholder"
    view.is_placeholder = True
    return view


# Where each section lives; the home page links there and says which ones are still coming.
SECTION_URL_NAMES = {
    "inbox": "channels:inbox",
    "contacts": "crm:contacts",
    "deals": "crm:deals",
    "calendar": "crm:calendar",
    "campaigns": "crm:campaigns",
    "bot": "channels:bot",
    "channels": "channels:channels",
    "privacy": "privacy:centre",
}


def _section_links(tenant_slug: str) -> list[dict]:
    links = []
    for key, (title, _issue) in SECTIONS.items():
        url = reverse(SECTION_URL_NAMES[key], kwargs={"tenant_slug": tenant_slug})
        available = not getattr(resolve(url).func, "is_placeholder", False)
        links.append({"key": key, "title": title, "url": url, "available": available})
    return links


@tenant_view(Role.AGENT)
def tenant_home(request):
    services.touch_membership(membership=request.membership)
    members = selectors.members_of(tenant=request.tenant)
    context = {"members": members}
    if request.htmx and request.htmx.target == "team-card":
        # The team card refreshes itself without reloading the page.
        response = render(request, "partials/team_card.html", context)
    else:
        links = _section_links(request.tenant.slug)
        context |= {
            "sections": [(key, title, issue) for key, (title, issue) in SECTIONS.items()],
            "section_links": links,
            "available": {link["key"]: link["available"] for link in links},
            "team_invited": len(members) > 1,
        }
        response = render(request, "tenants/home.html", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@tenant_view(Role.ADMIN)
def tenant_settings(request):
    # The form edits a copy: rejected input must not leak into the page around it.
    form = TenantSettingsForm(request.POST or None, instance=copy.copy(request.tenant))
    if request.method == "POST" and form.is_valid():
        changed = form.changed_data
        if changed:
            services.update_tenant_settings(
                tenant=request.tenant, **{name: form.cleaned_data[name] for name in changed}
            )
        messages.success(request, _("Settings saved."))
        return redirect("tenant:settings", tenant_slug=request.tenant.slug)
    return render(request, "tenants/settings.html", {"form": form})


@tenant_view(Role.AGENT)
def members(request):
    return render(
        request,
        "tenants/members.html",
        {
            "members": selectors.members_of(tenant=request.tenant),
            "invitations": selectors.pending_invitations(),
            "invite_form": InviteForm(),
            "roles": Role.choices,
        },
    )


@require_POST
@tenant_view(Role.ADMIN)
def invite(request):
    form = InviteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("tenant:members", tenant_slug=request.tenant.slug)
    try:
        invitation = services.invite_member(
            tenant=request.tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            by=request.membership,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    return redirect("tenant:members", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.ADMIN)
def member_role(request, membership_id: int):
    membership = get_object_or_404(Membership, pk=membership_id, tenant=request.tenant)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
    else:
        try:
            services.change_role(
                membership=membership, role=form.cleaned_data["role"], by=request.membership
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Role updated."))
    return redirect("tenant:members", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.AGENT)
def member_remove(request, membership_id: int):
    membership = get_object_or_404(Membership, pk=membership_id, tenant=request.tenant)
    leaving = membership.pk == request.membership.pk
    if not leaving and not request.membership.has_role(Role.ADMIN):
        raise PermissionDenied(_("Only owners and admins can remove members."))
    try:
        services.remove_member(membership=membership, by=request.membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("tenant:members", tenant_slug=request.tenant.slug)
    if leaving:
        messages.success(request, _("You left %(name)s.") % {"name": request.tenant.name})
        return redirect("tenants:home")
    messages.success(request, _("%(email)s was removed.") % {"email": membership.user.email})
    return redirect("tenant:members", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.ADMIN)
def invitation_revoke(request, invitation_id: int):
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    services.revoke_invitation(invitation=invitation)
    messages.success(request, _("Invitation withdrawn."))
    return redirect("tenant:members", tenant_slug=request.tenant.slug)


# --- Error pages ------------------------------------------------------------------------------
# Rendered without the request: no context processors, no tenant, nothing that can fail twice.


def _error(template: str, status: int) -> HttpResponse:
    try:
        body = loader.render_to_string(template)
    except Exception:  # the error page itself must never raise
        log.exception("error page %s failed to render", template)
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    return HttpResponse(body, status=status)


def bad_request(request, exception=None):
    return _error("400.html", 400)


def permission_denied(request, exception=None):
    return _error("403.html", 403)


def page_not_found(request, exception=None):
    return _error("404.html", 404)


def server_error(request):
    return _error("500.html", 500)


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@never_cache  # the page shows a new key once; no cache may keep it
@require_http_methods(["GET", "POST"])
@tenant_view(Role.OWNER)
def api_keys(request):
    """Owners create and revoke the business's API keys; a new key is shown once."""
    from tenants import api_auth
    from tenants.models import ApiKey

    new_key = None
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name:
            error = _("Give the key a name, e.g. the system that will use it.")
        elif len(name) > 100:
            error = _("The name is longer than 100 characters.")
        else:
            _record, new_key = api_auth.create_api_key(name=name, created_by=request.user)
    return render(
        request,
        "tenants/api_keys.html",
        {
            "keys": ApiKey.objects.select_related("created_by"),
            "new_key": new_key,
            "error": error,
        },
        status=400 if error else 200,
    )


@require_POST
@tenant_view(Role.OWNER)
def api_key_revoke(request, api_key_id: int):
    from tenants import api_auth
    from tenants.models import ApiKey

    api_key = get_object_or_404(ApiKey, pk=api_key_id)
    api_auth.revoke_api_key(api_key=api_key)
    messages.success(request, _("The key “%(name)s” was revoked.") % {"name": api_key.name})
    return redirect("tenant:api_keys", tenant_slug=request.tenant.slug)
