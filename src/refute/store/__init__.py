"""The session store (SQLite), and its off-the-event-loop wrapper for async code."""

from refute.store.background import BackgroundStore
from refute.store.sessions import (
    ANALYSIS_KEYS,
    BUSY_TIMEOUT,
    CONTROL_ID,
    DB_FILENAME,
    DOCUMENT_SCHEMA,
    STATUSES,
    Store,
    default_path,
    schema_version,
)

__all__ = [
    "ANALYSIS_KEYS",
    "BUSY_TIMEOUT",
    "CONTROL_ID",
    "DB_FILENAME",
    "DOCUMENT_SCHEMA",
    "STATUSES",
    "BackgroundStore",
    "Store",
    "default_path",
    "schema_version",
]
