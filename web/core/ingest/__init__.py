"""Ingest, free of Quart: wire formats, the routes they serve, and the one path events take."""
