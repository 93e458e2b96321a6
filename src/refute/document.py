"""The session document's vocabulary: its schema version, the control's id, statuses,
outcome and verdict words, and the exit code recorded for a session. Defined once here;
every layer reads these names.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTROL_ID",
    "EXIT_CODES",
    "SCHEMA",
    "STATUSES",
]

#: The `schema` value of a session document.
SCHEMA: Final = "refute.session/1"
#: The id of the control run (no hypothesis may take it).
CONTROL_ID: Final = "control"
#: The statuses a session can have.
STATUSES: Final = ("running", "completed", "interrupted", "failed")

#: The exit code of `refute` for each way a session (or a command) can end. The document
#: records it (`session.exit_code`); the CLI is the only code that exits with it.
EXIT_CODES: Final = {
    "ok": 0,
    "usage": 2,
    "control_not_reproduced": 3,
    "infrastructure": 4,
    "interrupted": 130,
}
