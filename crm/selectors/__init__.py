"""CRM reads, one module per area."""
