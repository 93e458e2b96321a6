"""Bounded capture of one output stream: full bytes to a log file, head + tail in memory."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "OutputCapture",
]



class OutputCapture:
    """Keeps at most `limit` bytes of a stream in memory: its first and last halves.

    Every byte goes to `log_path` (when given) untouched, so invalid UTF-8 survives there;
    `text()` decodes the kept bytes with replacement for display. A failing log write (a
    full disk) stops logging and is reported in `log_error`; it never fails the run.
    """

    __slots__ = (
        "_file",
        "_head",
        "_head_limit",
        "_tail",
        "_tail_limit",
        "log_error",
        "log_path",
        "total",
    )

    def __init__(self, limit: int, log_path: Path | None = None) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self.log_path = log_path
        self.log_error = ""
        self._file = None
        if log_path is not None:
            try:
                self._file = log_path.open("wb", buffering=0)
            except OSError as exc:
                self.log_error = f"cannot write log {log_path}: {exc.strerror or exc}"

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as exc:
                self.log_error = f"log write failed for {self.log_path}: {exc.strerror or exc}"
                self._close_file()
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

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    def text(self) -> str:
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        dropped = self.total - len(self._head) - len(self._tail)
        where = f"; full output in {self.log_path}" if self._file_written() else ""
        return f"{head}\n[... refute: {dropped} bytes truncated{where} ...]\n{tail}"

    def _file_written(self) -> bool:
        return self.log_path is not None and not self.log_error

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:  # pragma: no cover - close of a regular file
                self.log_error = self.log_error or f"log close failed: {exc}"
            self._file = None

    def close(self) -> None:
        self._close_file()
