"""Company reads."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from crm.models import Company


def companies_matching(*, q: str = "") -> QuerySet[Company]:
    queryset = Company.objects.annotate(contact_count=Count("contacts", distinct=True))
    q = q.strip()
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(domain__icontains=q))
    return queryset.order_by("name", "id")
