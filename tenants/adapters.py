from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # Operators of a private installation can close sign-up (invitations still work).
        return settings.SIGNUP_OPEN or bool(request.session.get("invitation_token"))
