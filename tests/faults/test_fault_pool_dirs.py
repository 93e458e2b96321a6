"""The pool's `slots` or `leases` directory a file or a symlink, a slot a file: no
traceback, nothing written or deleted through a link, sessions run, `refute clean` repairs
(see pool_corruption.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pool_corruption import CORRUPTIONS, check_corruption


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in CORRUPTIONS if not n.startswith("lease-")))
def test_a_corrupt_pool_directory_is_repaired_not_fatal(tmp_path: Path, name: str) -> None:
    check_corruption(tmp_path, name)
