"""Reading stored sessions: `show` one, list the `history` of a repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refute.errors import RefuteError, UnknownSessionError
from refute.store import BackgroundStore
from refute.workspace.worktrees import Repository

__all__ = ["Listed", "Shown", "current_repo", "history", "history_of", "show", "show_session"]


@dataclass(frozen=True)
class Shown:
    """A stored session, and whose sessions were looked in: `repo` is the repository the
    latest session was taken from (None: a session id was given, or `repo` was not inside
    a git repository and the latest session of any repository was taken: `any_repo`)."""

    document: dict[str, Any]
    repo: str | None
    any_repo: bool


@dataclass(frozen=True)
class Listed:
    """Sessions, newest first, and of which repository (None with `any_repo`: of all;
    `not_a_repo`: because the directory given is not inside a git repository)."""

    rows: list[dict[str, Any]]
    repo: str | None
    not_a_repo: bool


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
    session of the repository at `repo` (`show_session` says which was taken)."""
    return (await show_session(session, repo=repo, store_path=store_path)).document


async def show_session(
    session: str | None, *, repo: Path = Path(), store_path: Path | None = None
) -> Shown:
    """`show`, saying where the session came from: without an id, the latest session of
    the repository at `repo`, or, when `repo` is not inside a git repository, the latest
    of any repository (`Shown.any_repo`: a front end must say so)."""
    async with BackgroundStore(store_path) as store:
        where: str | None = None
        if session:
            session_id = await store.call(store.store.resolve_session_id, session)
        else:
            where = await current_repo(repo)
            latest = await store.call(store.store.latest_session_id, where)
            if latest is None:
                scope = "for this repository" if where else "yet"
                raise UnknownSessionError(
                    f"no session recorded {scope} (run `refute run PLAN` first;"
                    " `refute history --all` lists every repository's)"
                )
            session_id = latest
        document = await store.call(store.store.load_document, session_id)
        return Shown(document, where, any_repo=not session and where is None)


async def history(
    *,
    repo: Path = Path(),
    all_repos: bool = False,
    limit: int = 20,
    store_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Recorded sessions, newest first: of the repository at `repo`, or of every one."""
    listed = await history_of(repo=repo, all_repos=all_repos, limit=limit, store_path=store_path)
    return listed.rows


async def history_of(
    *,
    repo: Path = Path(),
    all_repos: bool = False,
    limit: int = 20,
    store_path: Path | None = None,
) -> Listed:
    """`history`, saying of which repository: outside a git repository, of every one
    (`Listed.not_a_repo`: a front end must say so)."""
    where = None if all_repos else await current_repo(repo)
    async with BackgroundStore(store_path) as store:
        rows = await store.call(store.store.list_sessions, where, limit=limit)
    return Listed(rows, where, not_a_repo=not all_repos and where is None)
