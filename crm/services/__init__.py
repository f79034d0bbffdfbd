"""CRM writes, one module per area. Views, tasks and the messaging pipeline call these, never
the ORM directly."""

from crm.services.contacts import find_or_create_contact_by_phone

__all__ = ["find_or_create_contact_by_phone"]
