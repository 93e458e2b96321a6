"""Retention: `refute clean --older-than AGE` and `refute clean --max-size SIZE`.

`--older-than` deletes every session that ended longer ago than AGE — its record, its
hypotheses and runs, and its logs (`state_dir()/logs/<session>/`) — and log directories
of no stored session whose newest file is that old. `--max-size` then deletes log
directories, oldest session first, until the state directory (database and logs) fits
the budget; the session records stay (their results keep each run's output head and
tail). A "running" session is never touched, nor are its logs. With `dry_run`, nothing
is deleted and the report says what would be. Nothing is pruned unless asked: refute
never deletes what the user did not name (docs/cli.md, "State and logs").
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from refute.paths import MARKER_FILE, state_dir
from refute.store import Store, default_path
from refute.store.retention import SessionAge, delete_sessions, session_ages

__all__ = [
    "PruneReport",
    "parse_age",
    "parse_size",
    "prune",
]

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MAX_AGE = timedelta(days=100 * 365)


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` as a timedelta > 0; ValueError otherwise."""
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an age such as 30d, 12h, 90m or 2w")
    age = timedelta(seconds=float(match.group(1)) * _AGE_UNITS[match.group(2)])
    if not timedelta(0) < age <= _MAX_AGE:
        raise ValueError(f"{text!r}: the age must be > 0 and at most 100 years")
    return age


def parse_size(text: str) -> int:
    """`1G`, `500M`, `64KiB`, `2048` (bytes; K, M, G, T are powers of 1024) > 0."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 1G, 500M or 64K")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size < 1:
        raise ValueError(f"{text!r}: the size must be at least 1 byte")
    return size


@dataclass
class PruneReport:
    """What `prune` deleted (or would): session ids, log directories with their bytes,
    and the state directory's size before and after against the budget."""

    dry_run: bool
    sessions: list[str] = field(default_factory=list)
    logs: list[tuple[Path, int]] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # sessions kept because running
    size_before: int = 0
    size_after: int = 0
    budget: int | None = None

    @property
    def over_budget(self) -> int:
        return 0 if self.budget is None else max(0, self.size_after - self.budget)

    @property
    def nothing_done(self) -> bool:
        return not (self.sessions or self.logs)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += Path(root, name).lstat().st_size
    return total


def _newest(path: Path) -> float:
    newest = path.lstat().st_mtime
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                newest = max(newest, Path(root, name).lstat().st_mtime)
    return newest


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _log_dirs(logs: Path) -> list[Path]:
    if not logs.is_dir():
        return []
    return sorted(
        p for p in logs.iterdir() if p.name != MARKER_FILE and p.is_dir() and not p.is_symlink()
    )


def prune(
    *,
    older_than: timedelta | None = None,
    max_size: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneReport:
    """Delete old sessions and their logs, then logs beyond the size budget (see the
    module docstring). Raises StoreError when the database cannot be used."""
    report = PruneReport(dry_run=dry_run, budget=max_size)
    moment = now or datetime.now(UTC)
    # Log directories first, sessions second: a session's record exists before its logs,
    # so a directory seen here without a record is not a session starting meanwhile.
    log_dirs = _log_dirs(state_dir() / "logs")
    report.size_before = _tree_size(state_dir())
    ages: list[SessionAge] = []
    store: Store | None = Store.open() if default_path().exists() else None
    try:
        if store is not None:
            ages = session_ages(store)
        by_id = {age.id: age for age in ages}
        report.running = [age.id for age in ages if age.status == "running"]
        removed: set[Path] = set()
        if older_than is not None:
            cutoff = moment - older_than
            old = [a.id for a in ages if a.status != "running" and a.ended < cutoff]
            if old and store is not None and not dry_run:
                delete_sessions(store, old)
            report.sessions = old
            for path in log_dirs:
                age = by_id.get(path.name)
                if age is None:
                    is_old = datetime.fromtimestamp(_newest(path), UTC) < cutoff
                else:
                    is_old = path.name in old
                if is_old:
                    _drop(path, report, removed, dry_run=dry_run)
        report.size_after = report.size_before - sum(size for _, size in report.logs)
        if max_size is not None:
            _fit_budget(log_dirs, by_id, max_size, report, removed, dry_run=dry_run)
    finally:
        if store is not None:
            store.close()
    return report


def _drop(path: Path, report: PruneReport, removed: set[Path], *, dry_run: bool) -> None:
    size = _tree_size(path)
    if not dry_run:
        _remove(path)
    report.logs.append((path, size))
    removed.add(path)


def _fit_budget(
    log_dirs: list[Path],
    by_id: dict[str, SessionAge],
    budget: int,
    report: PruneReport,
    removed: set[Path],
    *,
    dry_run: bool,
) -> None:
    def ended(path: Path) -> datetime:
        age = by_id.get(path.name)
        return age.ended if age else datetime.fromtimestamp(_newest(path), UTC)

    candidates = [
        p
        for p in log_dirs
        if p not in removed and (p.name not in by_id or by_id[p.name].status != "running")
    ]
    for path in sorted(candidates, key=lambda p: (ended(p), p.name)):
        if report.size_after <= budget:
            break
        before = len(report.logs)
        _drop(path, report, removed, dry_run=dry_run)
        report.size_after -= sum(size for _, size in report.logs[before:])
