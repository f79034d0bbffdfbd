"""CRM pages, one module per area; each view is thin and calls `crm.services`/`crm.selectors`."""
