"""Item pipelines: validation, then storage (MongoDB or SQLite)."""
