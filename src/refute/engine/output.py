"""Bounded capture of one output stream: head + tail in memory, head + tail in a log file.

Memory holds at most `limit` bytes (the result's `stdout`/`stderr`); the log file holds at
most `log_limit` bytes plus one marker line, whatever the test prints, and it is bounded
*while* the test writes: the first half of the cap is written in order, the rest of the
file is a ring that always holds the latest bytes. When the stream ends, a ring that
wrapped is put back in order behind a marker saying how many bytes were dropped (copied
in chunks of `_CHUNK` bytes, so memory stays bounded too). Logs are documented in
docs/cli.md, "State and logs".
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_LOG_LIMIT",
    "MAX_LOG_LIMIT",
    "MIN_LOG_LIMIT",
    "OutputCapture",
    "log_marker",
]

#: Bytes of one stream's log kept by default (the first half and the last half).
DEFAULT_LOG_LIMIT = 64 << 20
#: The largest per-stream log cap that may be asked for (`refute run --log-limit`).
MAX_LOG_LIMIT = 4 << 30
#: The smallest: below it a head and a tail say nothing.
MIN_LOG_LIMIT = 4 << 10

_CHUNK = 1 << 20


def log_marker(dropped: int, head: int, tail: int) -> bytes:
    """The line that replaces the middle of a capped log."""
    return (
        f"\n[... refute: {dropped} bytes of output dropped here; this log keeps the first"
        f" {head} and the last {tail} bytes (log limit {head + tail}) ...]\n"
    ).encode()


class OutputCapture:
    """Keeps at most `limit` bytes of a stream in memory: its first and last halves.

    The bytes go to `log_path` (when given) untouched, so invalid UTF-8 survives there, up
    to `log_limit` bytes: beyond it the log keeps its first and last halves and marks the
    cut (`log_dropped` counts the bytes left out). `text()` decodes the kept bytes with
    replacement for display. A failing log write (a full disk) stops logging and is
    reported in `log_error`; it never fails the run.
    """

    __slots__ = (
        "_fd",
        "_head",
        "_head_limit",
        "_log_head",
        "_log_head_limit",
        "_ring_filled",
        "_ring_limit",
        "_ring_pos",
        "_ring_written",
        "_tail",
        "_tail_limit",
        "log_error",
        "log_path",
        "total",
    )

    def __init__(
        self, limit: int, log_path: Path | None = None, log_limit: int = DEFAULT_LOG_LIMIT
    ) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self.log_path = log_path
        self.log_error = ""
        log_limit = max(2, int(log_limit))
        self._log_head_limit = log_limit // 2
        self._ring_limit = log_limit - self._log_head_limit
        self._log_head = 0  # bytes written to the log's head
        self._ring_pos = 0  # where the ring's next byte goes (0 <= pos < ring limit)
        self._ring_filled = 0  # bytes of the ring in use
        self._ring_written = 0  # bytes ever written to the ring
        self._fd: int | None = None
        if log_path is not None:
            try:
                self._fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            except OSError as exc:
                self.log_error = f"cannot write log {log_path}: {exc.strerror or exc}"

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self._fd is not None:
            try:
                self._log(self._fd, data)
            except OSError as exc:
                self.log_error = f"log write failed for {self.log_path}: {exc.strerror or exc}"
                self._close_fd()
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            if not data:
                return
        self._tail += data
        excess = len(self._tail) - self._tail_limit
        if excess > 0:
            del self._tail[:excess]

    def _log(self, fd: int, data: bytes) -> None:
        room = self._log_head_limit - self._log_head
        if room > 0:
            part = data[:room]
            _pwrite_all(fd, part, self._log_head)
            self._log_head += len(part)
            data = data[room:]
        if not data:
            return
        ring = self._ring_limit
        view = memoryview(data)
        self._ring_written += len(view)
        if len(view) > ring:  # only the last `ring` bytes can survive
            self._ring_pos = (self._ring_pos + len(view) - ring) % ring
            view = view[-ring:]
        while view:
            n = min(len(view), ring - self._ring_pos)
            _pwrite_all(fd, view[:n], self._log_head_limit + self._ring_pos)
            self._ring_pos = (self._ring_pos + n) % ring
            self._ring_filled = min(ring, self._ring_filled + n)
            view = view[n:]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    @property
    def log_dropped(self) -> int:
        """Bytes of the stream the log left out (0: the log holds all of it)."""
        return max(0, self._ring_written - self._ring_limit)

    def text(self) -> str:
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        dropped = self.total - len(self._head) - len(self._tail)
        where = ""
        if self._file_written():
            what = "head and tail of the output" if self.log_dropped else "full output"
            where = f"; {what} in {self.log_path}"
        return f"{head}\n[... refute: {dropped} bytes truncated{where} ...]\n{tail}"

    def _file_written(self) -> bool:
        return self.log_path is not None and not self.log_error

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as exc:  # pragma: no cover - close of a regular file
                self.log_error = self.log_error or f"log close failed: {exc}"
            self._fd = None

    def close(self) -> None:
        if self._fd is not None and self.log_dropped and self.log_path is not None:
            try:
                self._put_in_order(self.log_path)
            except OSError as exc:
                self.log_error = f"cannot finish capped log {self.log_path}: {exc.strerror or exc}"
        self._close_fd()

    def _put_in_order(self, path: Path) -> None:
        """Rewrite a wrapped log as head, marker, the ring from its oldest byte."""
        head, ring, pos = self._log_head_limit, self._ring_limit, self._ring_pos
        marker = log_marker(self.log_dropped, head, ring)
        tmp = path.with_name(path.name + ".capping")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            src = os.open(path, os.O_RDONLY)
            try:
                _copy(src, out, 0, head)
                _pwrite_all(out, marker, head)
                _copy(src, out, head + pos, ring - pos, dest=head + len(marker))
                _copy(src, out, head, pos, dest=head + len(marker) + ring - pos)
            finally:
                os.close(src)
        except BaseException:
            os.close(out)
            tmp.unlink(missing_ok=True)
            raise
        os.close(out)
        tmp.replace(path)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _copy(src: int, dst: int, offset: int, length: int, dest: int | None = None) -> None:
    """Copy `length` bytes of `src` from `offset` to `dst` at `dest` (default: `offset`)."""
    at = offset if dest is None else dest
    while length > 0:
        chunk = os.pread(src, min(_CHUNK, length), offset)
        if not chunk:
            raise OSError(f"log shrank while being capped (at byte {offset})")
        _pwrite_all(dst, chunk, at)
        offset, at, length = offset + len(chunk), at + len(chunk), length - len(chunk)
