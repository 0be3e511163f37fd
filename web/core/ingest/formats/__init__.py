"""One module per SDK family's wire format; registered in web/core/ingest/registry.py."""
