"""Privacy pages, one module per area."""
