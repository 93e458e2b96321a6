"""The crash watchdog: test processes die with the refute process that started them.

A batch's runs are stopped by the batch itself when refute ends normally, is interrupted
or times out. When refute dies without running any code (SIGKILL, the OOM killer, a
segfault), nobody would stop them; this module's small companion process does.

How it works (docs/decisions.md §17.3 says why this design):

* `ensure_watchdog()` is called just before a batch spawns a test; the first call in a
  process starts the watchdog, later calls return at once. `refute --version`, `check`,
  `show` never start one.
* The watchdog is `python -I -S -c <boot> ...`: isolated, no site-packages, its own
  session (a Ctrl-C or kill of refute's process group does not reach it), cwd `/`,
  stdio on /dev/null, an empty environment (it carries neither the run marker nor
  anything else a test could be recognised by), and exactly one inherited descriptor:
  the read end of a pipe whose write end only refute holds (close-on-exec, and closed
  in children forked without exec). It imports only the standard library and
  `refute.engine.procs`, and then blocks in `read()`.
* When refute dies, by any means, the kernel closes the write end and the read returns
  EOF. A vfork'ed child that has not yet exec'd holds a copy of the write end until it
  does, so a test caught mid-spawn already carries its marker when the EOF arrives.
* On EOF the watchdog stops every process whose `REFUTE_RUN_ID` starts with this refute's
  token (`<pid>.<start time>.`, so pid reuse cannot confuse it): SIGTERM to each one and
  its process group (double-forked daemons that called setsid are found by their marker),
  up to `CRASH_GRACE` seconds, then SIGKILL, sweeping again until a pass finds nobody.
  After a clean exit the one pass finds nothing and the watchdog exits at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

from refute.engine.procs import find_marked, is_alive, killpg, process_group, signal_pids

__all__ = [
    "CRASH_GRACE",
    "STOP_DEADLINE",
    "ensure_watchdog",
    "main",
    "stop_session",
    "watchdog_pid",
]

#: Seconds the tests of a dead refute get between SIGTERM and SIGKILL.
CRASH_GRACE = 1.0
#: After the grace period, how long the watchdog keeps killing (processes forked meanwhile).
STOP_DEADLINE = 5.0
_POLL = 0.05

# The watchdog's program: put refute's import root first (it runs without site-packages),
# then run `main`. argv: root, fd, marker prefix, grace.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from refute.engine.watchdog import main; sys.exit(main(sys.argv[2:]))"
)

_lock = threading.Lock()
# (owner pid, watchdog pid, write end of the pipe) of this process' watchdog
_state: tuple[int, int, int] | None = None


def _import_root() -> str:
    """The directory that holds the `refute` package (src/ or site-packages)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: PTH100, PTH120 - no pathlib in the watchdog


def ensure_watchdog() -> int | None:
    """Start this process' watchdog if it has none yet; its pid (None where none can run).

    Thread-safe and cheap after the first call. A watchdog that cannot be started (not
    Linux, no interpreter to run it) is not an error: the start-up cleanup of the next
    refute and `refute clean` still find orphans.
    """
    global _state  # noqa: PLW0603 - one watchdog per process
    with _lock:
        if _state is not None and _state[0] == os.getpid():
            return _state[1]
        if not sys.platform.startswith("linux") or not sys.executable:
            return None
        import subprocess  # noqa: PLC0415 - only refute's side spawns; the watchdog never does

        from refute.owners import process_token  # noqa: PLC0415 - same

        read_end, write_end = os.pipe()  # both close-on-exec
        argv = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _BOOT,
            _import_root(),
            str(read_end),
            f"{process_token()}.",
            str(CRASH_GRACE),
        ]
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env={},
                start_new_session=True,
                close_fds=True,
                pass_fds=(read_end,),
            )
        except (OSError, ValueError):
            os.close(write_end)
            return None
        finally:
            os.close(read_end)
        # Never waited for: it outlives us by design. Without a returncode, Popen would
        # warn that it still runs when the object is collected at exit.
        popen.returncode = 0
        _state = (os.getpid(), popen.pid, write_end)
        return popen.pid


def watchdog_pid() -> int | None:
    """The pid of this process' watchdog, if it has started one."""
    state = _state
    return state[1] if state is not None and state[0] == os.getpid() else None


def _forget_after_fork() -> None:
    """In a child forked without exec: let go of the parent's pipe (its EOF is the parent's
    death, not ours) and start a watchdog of our own if we ever spawn a test."""
    global _state, _lock  # noqa: PLW0603
    _lock = threading.Lock()
    if _state is not None:
        with contextlib.suppress(OSError):
            os.close(_state[2])
    _state = None


os.register_at_fork(after_in_child=_forget_after_fork)


# -- the watchdog's side ---------------------------------------------------------------------


def _alive_marked(prefix: str) -> list[int]:
    return [p for p in find_marked(prefix, exact=False) if is_alive(p)]


def stop_session(prefix: str, grace: float, *, deadline: float = STOP_DEADLINE) -> int:
    """Stop every process marked `<prefix>...` and its process group: SIGTERM, up to `grace`
    seconds, then SIGKILL until a sweep finds nobody (at most `deadline` more seconds).
    Returns how many marked processes were found."""
    own_group = os.getpgrp()
    groups: set[int] = set()
    seen: set[int] = set()

    def signal_new(pids: list[int], signum: int, *, only_new: bool) -> None:
        fresh = [p for p in pids if p not in seen] if only_new else pids
        for pid in fresh:
            group = process_group(pid)
            if group is not None and group > 1 and group != own_group:
                groups.add(group)
                killpg(group, signum)
        signal_pids(fresh, signum)
        seen.update(fresh)

    pids = _alive_marked(prefix)
    if not pids:
        return 0
    signal_new(pids, signal.SIGTERM, only_new=True)
    grace_end = time.monotonic() + grace
    while time.monotonic() < grace_end:
        time.sleep(_POLL)
        pids = _alive_marked(prefix)
        if not pids:
            break
        signal_new(pids, signal.SIGTERM, only_new=True)  # forked during the grace period
    for group in groups:  # members that scrubbed their environment carry no marker
        killpg(group, signal.SIGKILL)
    kill_end = time.monotonic() + deadline
    while True:
        pids = _alive_marked(prefix)
        if not pids or time.monotonic() > kill_end:
            break
        signal_new(pids, signal.SIGKILL, only_new=False)
        time.sleep(_POLL / 2)
    return len(seen)


def main(argv: list[str]) -> int:
    """The watchdog program: `<fd> <marker prefix> <grace>`. Blocks until the pipe `fd`
    reports EOF (its owner is gone), stops the owner's tests, exits."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    try:
        fd, prefix, grace = int(argv[0]), argv[1], float(argv[2])
    except (IndexError, ValueError):
        return 2
    if not prefix.endswith(".") or prefix.count(".") != 2:
        return 2  # never a prefix that could match another refute's tests
    while True:
        try:
            data = os.read(fd, 64)
        except OSError:
            break
        if not data:
            break
    with contextlib.suppress(OSError):
        os.close(fd)
    stop_session(prefix, grace)
    return 0
