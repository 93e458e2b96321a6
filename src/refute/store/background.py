"""The store as async code uses it: every call runs on one thread of its own, in order.

SQLite waits (up to the busy timeout) while another process holds the write lock, and a
commit with `synchronous=FULL` waits for the disk. Neither may happen on the event loop,
where it would delay every test's deadline. `post()` queues a write without waiting for
it (a finished run, recorded the moment it ends); `call()` waits for a result; `flush()`
waits until every posted write is done and raises the first that failed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

from refute.store.sessions import Store

__all__ = ["BackgroundStore"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


class BackgroundStore:
    """A `Store` whose every method runs on one writer thread (see the module docstring)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refute-store")
        self._posted: list[Future[Any]] = []
        self._store: Store | None = None

    async def __aenter__(self) -> Self:
        try:
            self._store = await self._run(Store.open, self._path)
        except BaseException:
            self._thread.shutdown(wait=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: the writes already posted (finished runs) must reach the database even
        # when the session is being cancelled.
        close = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(close)
        except asyncio.CancelledError:
            await close
            raise

    async def _close(self) -> None:
        try:
            await self._wait_posted()
        finally:
            store, self._store = self._store, None
            if store is not None:
                await self._run(store.close)
            self._thread.shutdown(wait=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the background store is not open")
        return self._store

    async def call(self, method: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run `method(*args, **kwargs)` on the writer thread (after every posted write)."""
        return await self._run(method, *args, **kwargs)

    def post(self, method: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Queue `method(*args, **kwargs)` on the writer thread without waiting for it."""
        self._posted.append(self._thread.submit(functools.partial(method, *args, **kwargs)))

    async def flush(self) -> None:
        """Wait for every posted write; raise the first error one of them had."""
        await self._wait_posted()

    async def _wait_posted(self) -> None:
        posted, self._posted = self._posted, []
        if not posted:
            return
        await asyncio.gather(*(asyncio.wrap_future(f) for f in posted), return_exceptions=True)
        for future in posted:
            error = future.exception()
            if error is not None:
                raise error

    async def _run(self, method: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(method, *args, **kwargs))
