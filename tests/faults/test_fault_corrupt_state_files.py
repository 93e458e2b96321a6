"""Fault suite: each corrupted variant of the state files beside the database, through the
real CLI: calibration.json (wrong types, not JSON, a directory), its lock, `state/logs` and
`state/tmp` being files, the ownership marker, the state directory itself.

A file whose corruption stops a run (logs, tmp, the state directory) gives one error line
and exit 4; one that only costs something (calibration: the seed's cost model applies;
the marker) gives one warning line and the run goes on. `refute clean` moves it aside and
says so; the stored session is never deleted; the next `run` works with no warning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from corrupt_state_cases import (
    FILE_VARIANTS,
    Env,
    check_variant,
    env_maker,
    make_template,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A state directory holding one finished session, made by a real `refute run`."""
    return make_template(tmp_path_factory)


@pytest.fixture
def make_env(tmp_path: Path, template: tuple[Path, str]) -> Callable[[], Env]:
    return env_maker(tmp_path, template)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FILE_VARIANTS))
def test_corrupt_state_file_is_one_line_then_clean_repairs_it(
    name: str,
    make_env: Callable[[], Env],
    template: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check_variant(name, FILE_VARIANTS[name], make_env(), template[1], monkeypatch)
