"""CRM background work. Tasks are thin: tenant id first, activate it, call a service."""
