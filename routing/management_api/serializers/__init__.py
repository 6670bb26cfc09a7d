"""One module per resource family; `common` holds what the schema shares (the error shape)."""
