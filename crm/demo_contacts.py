"""Demo data for the CRM pages: companies, tags, custom attributes, contacts with tasks and
notes. Idempotent: each record is looked up by a natural key first, so seeding twice adds
nothing. Runs with the demo business active."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from crm.models import Company, Contact, ContactAttribute, Note, Tag, Task
from crm.services import companies as company_services
from crm.services import contacts as contact_services
from crm.services import notes as note_services
from crm.services import tasks as task_services

COMPANIES = [
    ("Harbour Logistics", "harbour-logistics.example"),
    ("Greenleaf Schools", "greenleaf.example"),
    ("Northside Gym", "northside-gym.example"),
]
TAGS = [("vip", "#b45309"), ("insurance", "#1d4ed8"), ("orthodontics", "#7c3aed")]
ATTRIBUTES = [
    ("last_visit", "Last visit", ContactAttribute.Kind.DATE, []),
    ("plan", "Care plan", ContactAttribute.Kind.CHOICE, ["none", "basic", "family"]),
    ("visits", "Visits this year", ContactAttribute.Kind.NUMBER, []),
]
# name, phone, email, stage, company index, tags, attributes
CONTACTS = [
    (
        "Priya Shah",
        "+447700900101",
        "priya@example.com",
        "customer",
        0,
        ["vip", "insurance"],
        {"plan": "family", "visits": "3", "last_visit": "2026-10-02"},
    ),
    ("Marco Rossi", "+447700900102", "marco@example.com", "lead", 1, ["orthodontics"], {}),
    ("Lena Müller", "+447700900103", "", "qualified", 2, ["insurance"], {"plan": "basic"}),
    ("Sam Okafor", "+447700900104", "sam@example.com", "opportunity", 0, [], {"visits": "1"}),
    (
        "Chloé Martin",
        "+447700900105",
        "chloe@example.com",
        "customer",
        None,
        ["vip"],
        {"plan": "basic", "last_visit": "2026-11-20"},
    ),
]


def seed_contacts(*, tenant) -> None:
    from tenants.models import Membership, Role

    members = Membership.objects.filter(tenant=tenant).select_related("user").order_by("pk")
    owner = next(m.user for m in members if m.role == Role.OWNER)
    agent = next((m.user for m in members if m.role == Role.AGENT), owner)
    companies = []
    for name, domain in COMPANIES:
        company = Company.objects.filter(name=name).first()
        if company is None:
            company = company_services.create_company(name=name, domain=domain, owner=owner)
        companies.append(company)
    for name, colour in TAGS:
        Tag.objects.get_or_create(name=name, defaults={"color": colour})
    for key, label, kind, choices in ATTRIBUTES:
        if not ContactAttribute.objects.filter(key=key).exists():
            contact_services.create_attribute(key=key, label=label, kind=kind, choices=choices)

    now = timezone.now()
    for index, (name, phone, email, stage, company, tags, attributes) in enumerate(CONTACTS):
        if Contact.objects.filter(phone=phone).exists():
            continue
        contact = contact_services.create_contact(
            name=name,
            phone=phone,
            email=email,
            lifecycle_stage=stage,
            owner=agent if index % 2 else owner,
            company=companies[company] if company is not None else None,
            tags=list(Tag.objects.filter(name__in=tags)),
            attributes=attributes,
        )
        note_services.add_note(
            body=f"{name.split()[0]} prefers messages in the morning.",
            author=owner,
            contact=contact,
        )
        task_services.create_task(
            title=f"Call {name.split()[0]} about the next appointment",
            created_by=owner,
            assignee=agent if index % 2 else owner,
            contact=contact,
            # One overdue, one due today, the rest later.
            due_at=now + timedelta(days=index - 1, hours=2 if index == 1 else 0),
        )
    if not Note.objects.filter(company=companies[0]).exists():
        note_services.add_note(
            body="Books check-ups for its drivers every spring.", author=owner, company=companies[0]
        )
    if not Task.objects.filter(title="Send the new price list to all VIPs").exists():
        task_services.create_task(
            title="Send the new price list to all VIPs",
            created_by=owner,
            assignee=agent,
            due_at=now + timedelta(days=5),
        )
