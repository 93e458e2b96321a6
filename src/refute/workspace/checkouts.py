"""Checkouts: a worktree at any commit, with a patch applied and a setup run, leased from the
warm pool of one repository and returned when the session is done.

    async with checkouts.at(sha, patch="fix.diff", setup=["make"]) as path:
        ...

Requests that are equal share one checkout (the repeats of a hypothesis run in the same
worktree); a failed preparation is remembered and raised again for every run that asks
for it, so a patch that does not apply is tried once. `Checkouts` implements the engine's
`Checkouts` protocol (`lease(request, owner)`), which is how a batch gets its worktrees;
the engine never sees git. Setup commands are run by a `SetupRunner` the app hands in
(the workspace starts no process but git). Guarantees:

* the user's checkout is never written: worktrees live in refute's cache directory, and
  every git child runs without inherited GIT_DIR/GIT_WORK_TREE and without hooks;
* `close()` always releases every lease (call it shielded from cancellation), records the
  measured costs for the cost model, and cancels preparations still under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refute.errors import CheckoutError, GitError, WorktreeError
from refute.model import DEFAULT_SETUP_TIMEOUT, CheckoutRequest
from refute.workspace import calibration
from refute.workspace.git import run_git
from refute.workspace.pool import Lease, WorktreePool
from refute.workspace.worktrees import Repository, apply_patch

__all__ = [
    "DEFAULT_SETUP_INPUTS",
    "SETUP_KEY",
    "Checkouts",
    "SetupOutcome",
    "SetupRunner",
    "apply_diff",
    "commit_diff",
    "setup_key",
]

#: The files a setup usually depends on (`setup_inputs` in a plan replaces them).
DEFAULT_SETUP_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements*.txt",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "package.json",
    "package-lock.json",
    "Cargo.lock",
    "go.sum",
)
#: Lease info key: the key of the last setup that succeeded in the slot.
SETUP_KEY = "setup_key"


@dataclass(frozen=True)
class SetupOutcome:
    """How a setup command ended: `ok`, or `message` says why not (one line). `cached`:
    it did not run, the slot had run the same setup on the same inputs; `logs`: its
    stdout and stderr log files."""

    ok: bool
    seconds: float
    message: str = ""
    cached: bool = False
    logs: tuple[str, ...] = ()


#: Runs a setup command for a request in its worktree (the request says argv, env, timeout).
SetupRunner = Callable[[CheckoutRequest, Path], Awaitable[SetupOutcome]]


@dataclass
class _Entry:
    """One prepared (or preparing) checkout: its task, its lease, who uses it now."""

    task: asyncio.Task[Path]
    lease: Lease | None = None
    users: int = 0
    last_used: float = 0.0


class Checkouts:
    """Leases, patches and sets up worktrees of one repository; see the module docstring.

    At most `capacity` worktrees are held at once (default: the pool's capacity, which is
    the session's concurrency): a request that needs a new one while that many are held
    takes the place of the least recently used one that no job uses now, which goes back
    to the pool (and, if it is asked for again, is prepared again — a warm slot with the
    same setup skips it). A failed preparation is remembered for good.
    """

    def __init__(
        self,
        repo: Repository,
        pool: WorktreePool,
        *,
        run_setup: SetupRunner | None = None,
        setup_inputs: Sequence[str] = DEFAULT_SETUP_INPUTS,
        capacity: int | None = None,
    ) -> None:
        self.repo = repo
        self.pool = pool
        self.run_setup = run_setup
        self.setup_inputs = tuple(setup_inputs)
        self.capacity = max(1, capacity or pool.capacity)
        #: How each owner's setup went (ran, failed, or skipped as cached).
        self.setups: dict[str, SetupOutcome] = {}
        #: Seconds measured per step, for the cost model (`refute.workspace.calibration`).
        self.samples: dict[str, list[float]] = {
            "worktree_create": [],
            "pool_acquire": [],
            "setup": [],
            "cleanup": [],
        }
        #: Where each request was checked out last (also failed ones that got a worktree).
        self.paths: dict[CheckoutRequest, Path] = {}
        self._entries: dict[CheckoutRequest, _Entry] = {}
        self._failures: dict[CheckoutRequest, CheckoutError] = {}
        self._room = asyncio.Lock()  # one eviction decision at a time
        self._closed = False
        # Leases on their way back to the pool: a cancellation must not stop one half-way
        # (the slot would stay "leased" by a dead process), and close() waits for them.
        self._returning: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def at(
        self,
        commit: str,
        *,
        patch: str | None = None,
        setup: Sequence[str] | None = None,
        setup_timeout: float = DEFAULT_SETUP_TIMEOUT,
        setup_env: Mapping[str, str] | None = None,
        owner: str = "checkout",
    ) -> AsyncIterator[Path]:
        """A worktree at `commit` (a full sha), patched and set up, for the block's duration
        (afterwards it stays prepared for equal requests until it is needed elsewhere or
        `close()` is called)."""
        request = CheckoutRequest(
            owner=owner,
            commit=commit,
            patch=patch,
            setup=tuple(setup) if setup else None,
            setup_timeout=setup_timeout,
            setup_env=tuple(sorted((setup_env or {}).items())),
        )
        async with self.lease(request) as path:
            yield path

    @contextlib.asynccontextmanager
    async def lease(self, request: CheckoutRequest) -> AsyncIterator[Path]:
        """The engine's protocol: the directory for `request`, prepared once, in use by the
        caller until the block ends. Raises CheckoutError."""
        entry = await self._entry(request)
        entry.users += 1
        try:
            # Shielded: one run being cancelled must not abort a preparation others share.
            path = await asyncio.shield(entry.task)
            yield path
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()

    async def _entry(self, request: CheckoutRequest) -> _Entry:
        if self._closed:
            raise CheckoutError("the checkouts of this session are closed")
        failure = self._failures.get(request)
        if failure is not None:
            raise failure
        async with self._room:
            entry = self._entries.get(request)
            if entry is None:
                await self._make_room()
                entry = _Entry(task=asyncio.create_task(self._prepare(request)))
                # Its failure is remembered (`_failures`) and raised to every run that
                # asks; retrieved here too, so it is not logged as never retrieved when the
                # runs waiting for it were cancelled first.
                entry.task.add_done_callback(_retrieve)
                self._entries[request] = entry
        return entry

    async def _make_room(self) -> None:
        """While `capacity` worktrees are held, return the least recently used idle one."""
        while len(self._entries) >= self.capacity:
            idle = [
                (entry.last_used, request)
                for request, entry in self._entries.items()
                if entry.users == 0 and entry.task.done()
            ]
            if not idle:
                return  # every held worktree is in use: go beyond capacity for a moment
            _, request = min(idle)
            entry = self._entries.pop(request)
            task = asyncio.ensure_future(self._return(entry))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)
            await asyncio.shield(task)

    async def _return(self, entry: _Entry) -> None:
        lease, entry.lease = entry.lease, None
        if lease is not None:
            start = time.monotonic()
            with contextlib.suppress(Exception):
                await self.pool.release(lease)
            self.samples["cleanup"].append(time.monotonic() - start)

    async def _prepare(self, request: CheckoutRequest) -> Path:
        entry_lease: Lease | None = None
        # This task's own entry, held here: close() may clear `_entries` while it runs, and
        # the lease must still reach the entry close() releases.
        own = self._entries[request]
        try:
            try:
                entry_lease = await self.pool.acquire(request.commit, request.owner)
            except (WorktreeError, GitError, OSError) as exc:
                raise CheckoutError(f"worktree failed: {exc}") from exc
            own.lease = entry_lease  # released by close() if it cleared the entries
            if self._closed:
                # close() ran meanwhile and its cancellation was lost (asyncio.wait_for in
                # 3.11 returns the result when the awaited git call finishes at the same
                # moment): go no further; close() returns this lease (signal-burst finding).
                raise CheckoutError("the checkouts of this session are closed")  # noqa: TRY301 - remembered like any failure
            self.paths[request] = entry_lease.path
            kind = "worktree_create" if entry_lease.fresh else "pool_acquire"
            self.samples[kind].append(entry_lease.seconds)
            await self._apply_change(request, entry_lease.path)
            if request.setup:
                await self._set_up(request, entry_lease)
        except CheckoutError as exc:
            # Remembered for every later run of the request; its worktree goes back now.
            self._failures[request] = exc
            entry = self._entries.pop(request, None)
            if entry is not None:
                await asyncio.shield(self._return(entry))
            raise
        return entry_lease.path

    async def _set_up(self, request: CheckoutRequest, lease: Lease) -> None:
        """Run the setup, unless this warm slot already ran the same setup on the same
        inputs (`setup_key`): then its results (a `.venv`, `node_modules`, kept paths) are
        still there and the setup is skipped."""
        if self.run_setup is None:
            raise CheckoutError("this plan has a setup but no way to run it was given")
        key = await setup_key(self.repo, request, self.setup_inputs)
        if not lease.fresh and lease.info.get(SETUP_KEY) == key:
            self.setups[request.owner] = SetupOutcome(ok=True, seconds=0.0, cached=True)
            return
        lease.info.pop(SETUP_KEY, None)
        self.pool.record(lease)  # a setup half done must not look done to the next session
        outcome = await self.run_setup(request, lease.path)
        self.setups[request.owner] = outcome
        if not outcome.ok:
            raise CheckoutError(f"setup failed ({outcome.message})")
        self.samples["setup"].append(outcome.seconds)
        lease.info[SETUP_KEY] = key
        self.pool.record(lease)

    async def _apply_change(self, request: CheckoutRequest, path: Path) -> None:
        """Apply the request's patch source (at most one) in the worktree at `path`."""
        try:
            if request.patch:
                await apply_patch(path, Path(request.patch), request.owner)
            elif request.patch_text:
                await apply_diff(path, request.patch_text.encode(), "the inline patch_text")
            elif request.cherry_pick:
                diff = await commit_diff(self.repo, request.cherry_pick)
                await apply_diff(path, diff, f"commit {request.cherry_pick[:12]}")
            elif request.revert:
                diff = await commit_diff(self.repo, request.revert)
                await apply_diff(
                    path, diff, f"the revert of commit {request.revert[:12]}", reverse=True
                )
        except (WorktreeError, GitError) as exc:
            raise CheckoutError(str(exc)) from exc

    async def close(self) -> None:
        """Cancel unfinished preparations, release every lease, record the costs."""
        self._closed = True
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            if not entry.task.done():
                entry.task.cancel()
        await asyncio.gather(*(entry.task for entry in entries), return_exceptions=True)
        for entry in entries:
            await self._return(entry)
        await asyncio.gather(*list(self._returning), return_exceptions=True)
        samples = {k: v for k, v in self.samples.items() if v}
        if samples.get("cleanup"):
            samples["cleanup"] = [sum(samples["cleanup"]) / len(samples["cleanup"])]
        with contextlib.suppress(OSError):
            calibration.record(self.repo.id, samples)


def _retrieve(task: asyncio.Task[Path]) -> None:
    if not task.cancelled():
        task.exception()


#: git's empty tree: the "parent" of a root commit.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


async def commit_diff(repo: Repository, sha: str) -> bytes:
    """The change a (non-merge) commit made, as a binary diff against its parent."""
    parents = (
        await run_git(["rev-list", "--parents", "-n", "1", "--end-of-options", sha], cwd=repo.root)
    ).stdout.split()[1:]
    if len(parents) > 1:
        raise WorktreeError(
            f"commit {sha[:12]} is a merge: its change is ambiguous; give a patch instead"
        )
    parent = parents[0] if parents else _EMPTY_TREE
    result = await run_git(
        ["diff", "--binary", "--no-color", "--no-ext-diff", parent, sha, "--"], cwd=repo.root
    )
    return result.raw_stdout


async def apply_diff(path: Path, diff: bytes, what: str, *, reverse: bool = False) -> None:
    """Apply a diff in the worktree at `path`; one that does not apply is a WorktreeError."""
    args = ["apply", "--whitespace=nowarn", *(["--reverse"] if reverse else []), "-"]
    result = await run_git(args, cwd=path, stdin=diff, check=False)
    if result.exit_code != 0:
        detail = "; ".join(line for line in result.stderr.strip().splitlines() if line)
        raise WorktreeError(f"{what} does not apply: {detail or f'exit {result.exit_code}'}")


async def setup_key(repo: Repository, request: CheckoutRequest, inputs: Sequence[str]) -> str:
    """What a setup depends on, hashed: its command and environment, the request's change
    (a patch may edit pyproject.toml), and the content (blob ids) of the files at the
    request's commit that match `inputs` (globs against paths from the top level)."""
    listing = await run_git(
        ["ls-tree", "-r", "-z", "--full-tree", "--end-of-options", request.commit],
        cwd=repo.root,
    )
    files = []
    for record in listing.stdout.split("\0"):
        meta, _, path = record.partition("\t")
        if path and any(fnmatch.fnmatchcase(path, pattern) for pattern in inputs):
            files.append((path, meta.split()[-1]))
    patch = b""
    if request.patch:
        with contextlib.suppress(OSError):
            patch = Path(request.patch).read_bytes()
    identity = {
        "setup": list(request.setup or ()),
        "env": list(request.setup_env),
        "change": [
            hashlib.sha256(patch).hexdigest() if request.patch else None,
            request.patch_text,
            request.cherry_pick,
            request.revert,
        ],
        "inputs": sorted(files),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
