"""Run the retention purge now (the same service the daily Celery beat task calls)."""

from django.core.management.base import BaseCommand, CommandError

from privacy import retention
from tenants.context import tenant_context
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Purge what each business's retention policies no longer allow to keep."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="only this business")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go, delete nothing"
        )

    def handle(self, *args, tenant=None, dry_run=False, **options):
        tenants = Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"No active business with the address {tenant!r}.")
        for business in tenants:
            with tenant_context(business):
                report = retention.record_dry_run() if dry_run else retention.purge_expired()
            totals = ", ".join(f"{k} {v}" for k, v in report.category_totals().items() if v)
            verb = "would remove" if dry_run else "removed"
            self.stdout.write(
                f"{business.slug}: {verb} {report.total} rows ({totals or 'nothing'}); "
                f"{report.get_status_display()}"
            )
