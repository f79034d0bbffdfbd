"""`manage.py verify_erasure --business SLUG (--phone P | --email E)`: search every registered
field of one business for a person's identifiers (what an erasure's verification does), and
say where they still appear. Exits 1 when something is found."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from privacy import dsr, erasure, subjects
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Search a business's registered personal-data fields for a person's phone or e-mail."

    def add_arguments(self, parser):
        parser.add_argument("--business", required=True, help="the business's address (slug)")
        parser.add_argument("--phone", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args, business, phone, email, **options):
        tenant = Tenant.objects.filter(slug=business).first()
        if tenant is None:
            raise CommandError(f"No business with the address {business!r}.")
        try:
            phone, email = dsr.clean_identifiers(phone=phone, email=email)
        except dsr.DataRequestError as exc:
            raise CommandError(exc.detail) from exc
        with tenant_context(tenant):
            result = erasure.verify(subjects.find_subject(phone=phone, email=email))
        if result["clean"]:
            self.stdout.write(
                f"Clean: {result['searched_models']} models searched, nothing mentions them."
            )
            return
        for label, count in sorted(result["hits"].items()):
            self.stdout.write(f"{label}: {count} row(s)")
        raise SystemExit(1)
