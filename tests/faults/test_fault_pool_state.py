"""Leases that are garbage, wrong JSON types, not an object, absurdly nested or a directory:
no traceback, sessions run, `refute clean` repairs (see pool_corruption.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pool_corruption import CORRUPTIONS, check_corruption


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in CORRUPTIONS if n.startswith("lease-")))
def test_a_corrupt_lease_is_repaired_not_fatal(tmp_path: Path, name: str) -> None:
    check_corruption(tmp_path, name)
