"""What the fault tests share: running refute as a user does, one subprocess per command,
under a timeout, and (unless a test counts them itself) failing on a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

#: The installed console script of the interpreter running the tests.
REFUTE = Path(sys.executable).parent / "refute"

#: Which output must carry neither a traceback nor "internal error": refute's stderr (stdout
#: may carry the tests' own output), both streams, or none (the test counts them itself).
Clean = Literal["stderr", "both", "none"]


def run_cli(
    argv: Sequence[object], *, cwd: Path, timeout: float, clean: Clean = "stderr"
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if clean != "none":
        said = proc.stderr if clean == "stderr" else proc.stdout + proc.stderr
        assert "Traceback" not in said, said
        assert "internal error" not in said, said
    return proc


def refute(
    *args: object, cwd: Path, timeout: float = 180.0, clean: Clean = "stderr"
) -> subprocess.CompletedProcess[str]:
    """`refute ARGS...` in `cwd`, through the installed console script."""
    return run_cli([REFUTE, *args], cwd=cwd, timeout=timeout, clean=clean)
