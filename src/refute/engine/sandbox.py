"""`isolation: sandbox`: one test process in a private mount namespace.

`launcher_argv(mounts, argv)` is what the engine spawns instead of a sandboxed job's argv:

    python -I -S <refute/engine/launcher.py> --ro PATH ... --rw PATH ... -- argv...

The launcher (`refute.engine.launcher`, run as a script: the standard library's `os`,
`sys` and `ctypes` only, so it starts in a few milliseconds without site-packages) makes
the `--ro` paths read-only, binds the `--rw` paths below them writable again, locks the
mounts in a nested user namespace and `execvp`s the test: the pid refute tracks, its
process group and its session are the test's own, and timeouts kill the tree as ever.
See its docstring for the steps and why a test cannot undo them.

`unavailable_reason()` answers, once per process, whether this machine can do all that,
by running the launcher's `--probe` in a child (a real attempt, not a guess from sysctls).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAUNCHER", "SandboxMounts", "launcher_argv", "unavailable_reason"]

#: The launcher script: run by path with -I -S, it needs no site-packages.
LAUNCHER = Path(__file__).resolve().with_name("launcher.py")
#: How long the availability probe may take (a busy machine starts Python slowly).
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class SandboxMounts:
    """What one sandboxed test sees read-only and what it may still write (absolute paths;
    a writable path matters only below a read-only one)."""

    read_only: tuple[Path, ...]
    writable: tuple[Path, ...]


def launcher_argv(mounts: SandboxMounts, argv: Sequence[str]) -> list[str]:
    """The command that runs `argv` inside the sandbox `mounts` describe."""
    command = [sys.executable, "-I", "-S", str(LAUNCHER)]
    for path in mounts.read_only:
        command += ["--ro", os.fspath(path)]
    for path in mounts.writable:
        command += ["--rw", os.fspath(path)]
    return [*command, "--", *argv]


@functools.cache
def unavailable_reason() -> str | None:
    """None when tests can run sandboxed here, else one line saying why not (to follow
    "isolation 'sandbox' is unavailable: "). Probed once per process by running the
    launcher's whole setup in a child."""
    if not sys.platform.startswith("linux"):
        return f"it needs Linux mount namespaces (this is {sys.platform})"
    import subprocess  # noqa: PLC0415 - the launcher itself never needs it
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="refute-sandbox-probe-") as tmp:
        inner = Path(tmp, "writable")
        inner.mkdir()
        argv = [sys.executable, "-I", "-S", str(LAUNCHER), "--probe", tmp, os.fspath(inner)]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the probe could not run ({exc})"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("refute sandbox: ") if lines else f"exit {done.returncode}"
