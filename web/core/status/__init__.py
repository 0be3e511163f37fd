"""The pipeline's status: Redis key layout, heartbeat records, readers and formatting."""
