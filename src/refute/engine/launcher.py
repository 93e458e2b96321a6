"""The sandbox launcher, run as a script: `python -I -S launcher.py --ro P ... --rw P ... -- argv`.

Standard library only (`os`, `sys`, `ctypes`): it runs without site-packages, before every
sandboxed test, so what it imports is its cost. In this order, then `execvp` of the test:

1. a private mount namespace: `unshare(CLONE_NEWNS)` as root, else
   `unshare(CLONE_NEWUSER | CLONE_NEWNS)` with the caller's uid and gid mapped to
   themselves (`setgroups` denied);
2. every mount `MS_REC | MS_PRIVATE`, so nothing done here propagates to the host;
3. read-only binds of the `--ro` paths (the user's checkout, the common git directory,
   the pool, the user's other worktrees), then writable binds on top of the `--rw` paths
   that lie below one of them (the test's worktree, its own admin directory, the object
   store), each keeping the flags its mount had (nosuid, nodev, noexec, atime);
4. the lock: a nested `unshare(CLONE_NEWUSER | CLONE_NEWNS)`. Mounts inherited from a
   more privileged mount namespace are locked (MNT_LOCK_READONLY, MNT_LOCKED): even a
   test with every capability in its namespace (root here) cannot remount them
   read-write, unmount them to reveal what is below, or bind the tree under them
   without them; being in a user namespace of its own, it cannot reach other processes'
   views either (`/proc/<pid>/root` and `setns` need capabilities in their namespace).

A launcher that cannot set up its sandbox prints one line ("refute sandbox: ...") and
exits 126 (the engine's "could not be executed"); a test command that is not found exits
127, as from a shell. `--probe OUTER INNER` does the whole setup on a scratch directory,
checks that it holds, and exits 0 (`refute.engine.sandbox.unavailable_reason`).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not `typing`'s: importing typing is a third of the start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["confine", "main"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RELATIME = 1 << 21
_MS_STRICTATIME = 1 << 24
_ST_RELATIME = 4096  # statvfs' f_flag bit (not the same number as MS_RELATIME)


class _SetupError(Exception):
    """The sandbox could not be set up; the message is one line for the user."""


def _sysctl(name: str) -> str:
    try:
        fd = os.open(f"/proc/sys/{name}", os.O_RDONLY)
        try:
            return os.read(fd, 64).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
    except OSError:
        return ""


def _namespace_hint(errno: int) -> str:
    """What usually stops a user namespace, with the machine's own settings."""
    hints = []
    limit = _sysctl("user/max_user_namespaces")
    if limit == "0" or errno == 28:  # ENOSPC: the limit of this (or a parent) namespace
        hints.append(f"user.max_user_namespaces is {limit or 'reached'}")
    if _sysctl("kernel/unprivileged_userns_clone") == "0":
        hints.append("kernel.unprivileged_userns_clone is 0")
    if _sysctl("kernel/apparmor_restrict_unprivileged_userns") == "1":
        hints.append("kernel.apparmor_restrict_unprivileged_userns is 1")
    return f" ({'; '.join(hints)})" if hints else ""


class _Libc:
    def __init__(self) -> None:
        import ctypes  # noqa: PLC0415 - only the launcher pays for it

        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        self.libc.unshare.argtypes = [ctypes.c_int]

    def unshare(self, flags: int) -> int:
        """0, or the errno of a failed unshare(2)."""
        if self.libc.unshare(flags) == 0:
            return 0
        return self.ctypes.get_errno()

    def mount(self, source: str | None, target: str, flags: int) -> None:
        src = os.fsencode(source) if source is not None else None
        if self.libc.mount(src, os.fsencode(target), None, flags, None) != 0:
            errno = self.ctypes.get_errno()
            what = "remount" if flags & _MS_REMOUNT else "mount"
            raise _SetupError(f"{what} {target}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise _SetupError(f"cannot write {path}: {exc.strerror}") from None


def _enter_user_namespace(libc: _Libc, uid: int, gid: int, *, what: str) -> None:
    errno = libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS)
    if errno:
        raise _SetupError(
            f"{what}: unshare(CLONE_NEWUSER|CLONE_NEWNS) failed: {os.strerror(errno)}"
            + _namespace_hint(errno)
        )
    # The same ids inside as outside: files keep their owners and `id` its answer.
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _mount_flags(path: str) -> int:
    """The flags a bind of `path` must keep: a user namespace may not clear locked ones."""
    try:
        have = os.statvfs(path).f_flag
    except OSError as exc:
        raise _SetupError(f"cannot stat {path}: {exc.strerror}") from None
    flags = 0
    for st_bit, ms_bit in (
        (os.ST_RDONLY, _MS_RDONLY),
        (os.ST_NOSUID, _MS_NOSUID),
        (os.ST_NODEV, _MS_NODEV),
        (os.ST_NOEXEC, _MS_NOEXEC),
        (os.ST_NOATIME, _MS_NOATIME),
        (os.ST_NODIRATIME, _MS_NODIRATIME),
    ):
        if have & st_bit:
            flags |= ms_bit
    if not have & (os.ST_NOATIME | _ST_RELATIME):
        flags |= _MS_STRICTATIME
    elif have & _ST_RELATIME:
        flags |= _MS_RELATIME
    return flags


def _below(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _bind(libc: _Libc, path: str, flags: int) -> None:
    libc.mount(path, path, _MS_BIND | _MS_REC)
    libc.mount(None, path, _MS_REMOUNT | _MS_BIND | flags)


def confine(read_only: Iterable[str], writable: Iterable[str]) -> None:
    """Make this process' view of `read_only` read-only, `writable` below it writable, and
    lock it (see the module docstring). Raises `_SetupError`."""
    ro = sorted({os.path.realpath(p) for p in read_only}, key=len)
    rw = sorted({os.path.realpath(p) for p in writable}, key=len)
    ro = [p for i, p in enumerate(ro) if not any(_below(p, q) for q in ro[:i])]
    rw = [p for p in rw if any(_below(p, q) for q in ro)]
    # Flags as they are before anything is mounted: a writable bind gets its own back.
    ro_flags = {p: _mount_flags(p) | _MS_RDONLY for p in ro}
    rw_flags = {p: _mount_flags(p) for p in rw}
    libc = _Libc()
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0 or libc.unshare(_CLONE_NEWNS):
        _enter_user_namespace(libc, uid, gid, what="private mount namespace")
    libc.mount(None, "/", _MS_REC | _MS_PRIVATE)
    for path in ro:
        _bind(libc, path, ro_flags[path])
    for path in rw:
        _bind(libc, path, rw_flags[path])
    _enter_user_namespace(libc, uid, gid, what="locking the mounts")


def _probe(outer: str, inner: str) -> int:
    """The launcher's whole setup on a scratch directory, checked: 0 when it works."""
    confine([outer], [inner])
    try:
        os.close(os.open(f"{inner}/ok", os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise _SetupError(f"a writable bind is not writable: {exc.strerror}") from None
    try:
        os.close(os.open(f"{outer}/leak", os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        if exc.errno != 30:  # EROFS
            raise _SetupError(f"a read-only bind fails oddly: {exc.strerror}") from None
    else:
        raise _SetupError("a read-only bind is writable")
    return 0


def _fail(message: str, code: int) -> int:
    os.write(2, f"refute sandbox: {message}\n".encode(errors="replace"))
    return code


def _parse(args: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """`(read_only, writable, argv)` of `--ro P ... --rw P ... -- argv...`."""
    read_only: list[str] = []
    writable: list[str] = []
    position = 0
    while position < len(args) and args[position] != "--":
        if position + 1 >= len(args):
            raise _SetupError(f"option {args[position]!r} lacks its value")
        option, value = args[position], args[position + 1]
        if option == "--ro":
            read_only.append(value)
        elif option == "--rw":
            writable.append(value)
        else:
            raise _SetupError(f"unknown option {option!r}")
        position += 2
    argv = list(args[position + 1 :])
    if not argv:
        raise _SetupError("no command given (usage: --ro P ... --rw P ... -- argv...)")
    return read_only, writable, argv


def main(args: Sequence[str]) -> int:
    """`--ro PATH ... --rw PATH ... -- argv...` (exec, no return) or `--probe OUTER INNER`."""
    try:
        if args[:1] == ["--probe"] and len(args) == 3:
            return _probe(args[1], args[2])
        read_only, writable, argv = _parse(args)
        confine(read_only, writable)
    except _SetupError as exc:
        return _fail(str(exc), 126)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the test's own argv, never a shell line
    except FileNotFoundError:
        return _fail(f"test command not found: {argv[0]}", 127)
    except OSError as exc:
        return _fail(f"could not start test command {argv[0]}: {exc.strerror}", 126)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
