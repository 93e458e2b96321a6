"""Reading stored sessions: `show` one, list the `history` of a repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refute.errors import RefuteError, UnknownSessionError
from refute.store import BackgroundStore
from refute.workspace.worktrees import Repository

__all__ = ["current_repo", "history", "show"]


async def current_repo(repo: Path) -> str | None:
    """The top level of the repository at `repo`, or None when it is not one."""
    try:
        return str((await Repository.open(repo)).root)
    except RefuteError:
        return None


async def show(
    session: str | None, *, repo: Path = Path(), store_path: Path | None = None
) -> dict[str, Any]:
    """The stored document of `session` (an id or a unique prefix), by default the latest
    session of the repository at `repo`."""
    async with BackgroundStore(store_path) as store:
        if session:
            session_id = await store.call(store.store.resolve_session_id, session)
        else:
            latest = await store.call(store.store.latest_session_id, await current_repo(repo))
            if latest is None:
                raise UnknownSessionError(
                    "no session recorded for this repository yet (run `refute run PLAN` first)"
                )
            session_id = latest
        return await store.call(store.store.load_document, session_id)


async def history(
    *,
    repo: Path = Path(),
    all_repos: bool = False,
    limit: int = 20,
    store_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Recorded sessions, newest first: of the repository at `repo`, or of every one."""
    where = None if all_repos else await current_repo(repo)
    async with BackgroundStore(store_path) as store:
        return await store.call(store.store.list_sessions, where, limit=limit)
