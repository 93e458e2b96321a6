"""`refute.workspace.preflight`: will a patch apply, a command be found, the seed's script be
there, in a worktree of the base? Real repositories, real git. The user's index, working
tree and `.git` stay byte-identical, also while another process holds `index.lock`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

import pytest

from gitutil import fingerprint, git, make_repo
from refute.errors import GitError
from refute.paths import MARKER_FILE, state_dir
from refute.workspace.preflight import (
    command_problem,
    diff_problem,
    patch_problem,
    seed_script_path,
    seed_script_problem,
)
from refute.workspace.worktrees import Repository, resolve_base

FILES = {
    "stats.py": "def mean(xs):\n    return sum(xs) // len(xs)\n\nprint(mean([1, 2]))\n",
    "scripts/check.sh": "#!/bin/sh\nexit 0\n",
    "scripts/plain.sh": "#!/bin/sh\nexit 0\n",
    ".falsification/test_token-race.sh": "#!/bin/sh\nexit 1\n",
    ".falsification/test_plain.sh": "#!/bin/sh\nexit 1\n",
    "run.sh": "#!/bin/sh\nexit 0\n",
    ".gitignore": "*.log\n",
}
EXECUTABLE = ("scripts/check.sh", ".falsification/test_token-race.sh", "run.sh")
FIXED = "def mean(xs):\n    return sum(xs) / len(xs)\n\nprint(mean([1, 2]))\n"


def commit_all(path: Path, message: str) -> None:
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "repo", FILES, commit=False)
    for name in EXECUTABLE:
        (path / name).chmod(0o755)
    os.symlink("scripts", path / "bin")
    os.symlink("scripts/check.sh", path / "linked.sh")
    os.symlink("plain.sh", path / "scripts" / "plain-link.sh")
    commit_all(path, "initial")
    return path


@pytest.fixture
def repo(repo_path: Path) -> Repository:
    return asyncio.run(Repository.open(repo_path))


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with a `pytest` in it (and a non-executable `pytest-notes`)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "pytest").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (directory / "pytest").chmod(0o755)
    (directory / "pytest-notes").write_text("not a program\n", encoding="utf-8")
    return directory


def diff_of(path: Path, name: str, content: str, out: Path) -> Path:
    """`out` holds the diff that turns the committed `name` into `content`."""
    original = (path / name).read_bytes()
    (path / name).write_text(content, encoding="utf-8")
    out.write_text(git(path, "diff", "--", name), encoding="utf-8")
    (path / name).write_bytes(original)
    return out


def scratch_diff(
    where: Path, before: dict[str, str], after: dict[str, str], out: Path, mode: int = 0o644
) -> Path:
    """`out` holds the diff from `before` to `after`, made in a scratch repository at `where`
    (new files get `mode`)."""
    make_repo(where, before)
    for name, content in after.items():
        target = where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        if name not in before:
            target.chmod(mode)
    git(where, "add", "-A")
    out.write_text(git(where, "diff", "--cached"), encoding="utf-8")
    return out


async def head(repo: Repository) -> str:
    return await resolve_base(repo, "HEAD")


# -- patches -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_patch_that_applies(repo, repo_path, tmp_path):
    patch = diff_of(repo_path, "stats.py", FIXED, tmp_path / "fix.diff")
    assert await patch_problem(repo, await head(repo), patch) is None
    assert await patch_problem(repo, await head(repo), str(patch)) is None


@pytest.mark.asyncio
async def test_a_patch_that_does_not_apply(repo, repo_path, tmp_path):
    patch = diff_of(repo_path, "stats.py", FIXED, tmp_path / "fix.diff")
    (repo_path / "stats.py").write_text("something else\n", encoding="utf-8")
    commit_all(repo_path, "rewrite")
    base = await head(repo)
    problem = await patch_problem(repo, base, patch)
    assert problem is not None
    assert problem.startswith(
        f"patch fix.diff does not apply to {base[:7]}: error: patch failed: stats.py:1"
    )
    assert "\n" not in problem


@pytest.mark.asyncio
async def test_a_patch_of_a_file_the_base_does_not_have(repo, tmp_path):
    patch = tmp_path / "ghost.diff"
    patch.write_text("--- a/ghost.py\n+++ b/ghost.py\n@@ -1 +1 @@\n-old\n+new\n", encoding="utf-8")
    base = await head(repo)
    problem = await patch_problem(repo, base, patch)
    assert problem == (
        f"patch ghost.diff does not apply to {base[:7]}: error: ghost.py: does not exist in"
        f" {base[:7]}"
    )


@pytest.mark.asyncio
async def test_a_missing_or_empty_patch_file(repo, tmp_path):
    base = await head(repo)
    missing = tmp_path / "missing.diff"
    assert await patch_problem(repo, base, missing) == f"patch {missing} not found"
    assert "cannot be read" in (await patch_problem(repo, base, tmp_path) or "")
    empty = tmp_path / "empty.diff"
    empty.write_bytes(b"")
    assert "No valid patches in input" in (await patch_problem(repo, base, empty) or "")


@pytest.mark.asyncio
async def test_a_patch_for_the_working_tree_that_does_not_apply_to_an_older_base(
    repo, repo_path, tmp_path
):
    """The worktree is made from the base, not from what the user has checked out."""
    old = await head(repo)
    (repo_path / "stats.py").write_text(FIXED, encoding="utf-8")
    commit_all(repo_path, "true division")
    newer = FIXED.replace("print(mean([1, 2]))", "print(round(mean([1, 2]), 2))")
    patch = diff_of(repo_path, "stats.py", newer, tmp_path / "round.diff")
    assert await patch_problem(repo, await head(repo), patch) is None
    problem = await patch_problem(repo, old, patch)
    assert problem is not None
    assert problem.startswith(f"patch round.diff does not apply to {old[:7]}: error:")


@pytest.mark.asyncio
async def test_a_patch_against_uncommitted_work(repo, repo_path, tmp_path):
    base = await head(repo)
    (repo_path / "stats.py").write_text(FIXED, encoding="utf-8")  # not committed
    newer = FIXED.replace("print(mean([1, 2]))", "print(round(mean([1, 2]), 2))")
    patch = scratch_diff(
        tmp_path / "scratch", {"stats.py": FIXED}, {"stats.py": newer}, tmp_path / "round.diff"
    )
    assert await patch_problem(repo, base, patch) is not None
    assert await patch_problem(repo, base, patch, uncommitted=True) is None


@pytest.mark.asyncio
async def test_a_diff_in_memory_and_its_reverse(repo, repo_path, tmp_path):
    base = await head(repo)
    diff = diff_of(repo_path, "stats.py", FIXED, tmp_path / "fix.diff").read_bytes()
    assert await diff_problem(repo, base, diff, "the inline patch_text") is None
    problem = await diff_problem(repo, base, diff, "the revert of commit x", reverse=True)
    assert problem is not None
    assert problem.startswith(f"the revert of commit x does not apply to {base[:7]}: error:")


# -- commands ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "argv",
    [
        ["scripts/check.sh"],
        ["./scripts/check.sh", "--fast"],
        ["./scripts/../scripts/check.sh"],
        ["bin/check.sh"],  # through a committed link to a directory
        ["./linked.sh"],  # a committed link to an executable
    ],
)
async def test_a_relative_script_committed_and_executable(repo, bin_dir, argv):
    assert await command_problem(repo, await head(repo), argv, str(bin_dir)) is None


@pytest.mark.asyncio
async def test_a_relative_script_that_is_not_executable(repo, bin_dir):
    base = await head(repo)
    problem = await command_problem(repo, base, ["scripts/plain.sh"], str(bin_dir))
    assert problem == (
        f"command 'scripts/plain.sh' is not executable in {base[:7]} (mode 100644): it is"
        " exec'd directly, so it needs the executable bit (`git update-index --chmod=+x"
        " scripts/plain.sh`, then commit), or run it through its interpreter"
        " (`sh scripts/plain.sh`)"
    )
    linked = await command_problem(repo, base, ["scripts/plain-link.sh"], str(bin_dir))
    assert linked is not None
    assert "is not executable" in linked


@pytest.mark.asyncio
async def test_executable_only_in_the_working_tree_is_reported(repo, repo_path, bin_dir):
    (repo_path / "scripts" / "plain.sh").chmod(0o755)  # not committed
    problem = await command_problem(repo, await head(repo), ["scripts/plain.sh"], str(bin_dir))
    assert problem is not None
    assert "is not executable in" in problem
    assert "it is executable in your working tree, but that is not committed" in problem
    assert (
        await command_problem(
            repo, await head(repo), ["scripts/plain.sh"], str(bin_dir), uncommitted=True
        )
        is None
    )


@pytest.mark.asyncio
async def test_a_script_only_in_the_working_tree_is_reported(repo, repo_path, bin_dir):
    new = repo_path / "scripts" / "new.sh"
    new.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    new.chmod(0o755)
    base = await head(repo)
    problem = await command_problem(repo, base, ["./scripts/new.sh"], str(bin_dir))
    assert problem == (
        f"command './scripts/new.sh' is not in {base[:7]} (tests run in a worktree of it); it"
        " is in your working tree but not committed (worktrees are made from the base): commit"
        " it, or set `include_uncommitted: true`"
    )
    # With include_uncommitted the worktree is a snapshot of the working tree: it is there.
    assert (
        await command_problem(repo, base, ["./scripts/new.sh"], str(bin_dir), uncommitted=True)
        is None
    )


@pytest.mark.asyncio
async def test_a_script_absent_everywhere(repo, bin_dir):
    base = await head(repo)
    problem = await command_problem(repo, base, ["scripts/nope.sh"], str(bin_dir))
    assert (
        problem == f"command 'scripts/nope.sh' is not in {base[:7]} (tests run in a worktree of it)"
    )


@pytest.mark.asyncio
async def test_a_script_the_hypothesis_patch_adds(repo, repo_path, bin_dir, tmp_path):
    patch = scratch_diff(
        tmp_path / "scratch",
        {"stats.py": FILES["stats.py"]},
        {"scripts/added.sh": "#!/bin/sh\nexit 0\n"},
        tmp_path / "adds.diff",
        mode=0o755,
    )
    assert "new file mode 100755" in patch.read_text(encoding="utf-8")
    base = await head(repo)
    argv = ["scripts/added.sh"]
    assert await command_problem(repo, base, argv, str(bin_dir)) is not None
    assert await command_problem(repo, base, argv, str(bin_dir), patch=patch) is None
    assert await command_problem(repo, base, argv, str(bin_dir), patch=patch.read_bytes()) is None
    reverted = await command_problem(repo, base, argv, str(bin_dir), patch=patch, reverse=True)
    assert reverted == "command 'scripts/added.sh' is deleted by the hypothesis' patch"


@pytest.mark.asyncio
async def test_a_directory_and_a_path_outside_the_worktree(repo, bin_dir):
    base = await head(repo)
    assert await command_problem(repo, base, ["scripts/"], str(bin_dir)) == (
        f"command 'scripts/' is a directory in {base[:7]}, not a file"
    )
    outside = await command_problem(repo, base, ["../elsewhere/run.sh"], str(bin_dir))
    assert outside is not None
    assert "points outside the worktree" in outside


@pytest.mark.asyncio
async def test_a_bare_name_on_path(repo, bin_dir):
    base = await head(repo)
    assert await command_problem(repo, base, ["pytest", "-x"], str(bin_dir)) is None
    assert await command_problem(repo, base, ["git"], os.environ["PATH"]) is None


@pytest.mark.asyncio
async def test_a_typo_gets_a_suggestion(repo, bin_dir):
    base = await head(repo)
    assert await command_problem(repo, base, ["pytets", "-x"], str(bin_dir)) == (
        "command 'pytets' not found on PATH (did you mean 'pytest'?)"
    )
    # Not executable, so not a suggestion; and nothing close: no suggestion at all.
    assert await command_problem(repo, base, ["zqxjkv"], str(bin_dir)) == (
        "command 'zqxjkv' not found on PATH"
    )


@pytest.mark.asyncio
async def test_a_bare_name_that_is_a_file_of_the_repository(repo, bin_dir):
    problem = await command_problem(repo, await head(repo), ["run.sh"], str(bin_dir))
    assert problem == (
        "command 'run.sh' not found on PATH (a bare name is looked up on PATH; to run the"
        " repository's run.sh: ./run.sh)"
    )


@pytest.mark.asyncio
async def test_an_absolute_path(repo, bin_dir, tmp_path):
    base = await head(repo)
    assert await command_problem(repo, base, [sys.executable, "-c", "0"], str(bin_dir)) is None
    assert await command_problem(repo, base, [str(bin_dir / "pytest")], "") is None
    missing = tmp_path / "missing" / "tool"
    assert await command_problem(repo, base, [str(missing)], str(bin_dir)) == (
        f"command '{missing}' not found on this machine"
    )
    notes = bin_dir / "pytest-notes"
    assert await command_problem(repo, base, [str(notes)], str(bin_dir)) == (
        f"command '{notes}' is not executable (it is exec'd directly)"
    )
    assert await command_problem(repo, base, [str(tmp_path)], str(bin_dir)) == (
        f"command '{tmp_path}' is a directory, not a file"
    )


@pytest.mark.asyncio
async def test_an_empty_command(repo, bin_dir):
    assert await command_problem(repo, await head(repo), [], str(bin_dir)) == (
        "the command is empty"
    )


# -- the seed's script ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_seed_script_present_and_executable(repo):
    assert seed_script_path("token-race") == ".falsification/test_token-race.sh"
    assert await seed_script_problem(repo, await head(repo), "token-race") is None


@pytest.mark.asyncio
async def test_the_seed_script_absent(repo, repo_path):
    base = await head(repo)
    assert await seed_script_problem(repo, base, "clock-skew") == (
        "hypothesis 'clock-skew' has no `test`, so it runs .falsification/test_clock-skew.sh,"
        f" which is not in {base[:7]} (tests run in a worktree of it); or give the hypothesis"
        " a `test`"
    )
    script = repo_path / seed_script_path("clock-skew")
    script.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    script.chmod(0o755)
    problem = await seed_script_problem(repo, base, "clock-skew")
    assert problem is not None
    assert "it is in your working tree but not committed" in problem
    assert await seed_script_problem(repo, base, "clock-skew", uncommitted=True) is None


@pytest.mark.asyncio
async def test_the_seed_script_not_executable(repo):
    base = await head(repo)
    problem = await seed_script_problem(repo, base, "plain")
    assert problem is not None
    assert f"which is not executable in {base[:7]} (mode 100644)" in problem
    assert "sh .falsification/test_plain.sh" in problem


@pytest.mark.asyncio
async def test_the_seed_script_ignored_in_a_snapshot(repo, repo_path):
    (repo_path / ".gitignore").write_text("*.log\n.falsification/test_ignored.sh\n")
    script = repo_path / seed_script_path("ignored")
    script.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    script.chmod(0o755)
    problem = await seed_script_problem(repo, await head(repo), "ignored", uncommitted=True)
    assert problem is not None
    assert "is ignored by git, so the snapshot of uncommitted work leaves it out" in problem


# -- the user's checkout is never touched --------------------------------------------------------


def dot_git(path: Path) -> dict[str, str]:
    """Every file under .git (objects included) by content hash: nothing may be written."""
    found = {}
    for root, _dirs, names in os.walk(path / ".git"):
        for name in names:
            full = Path(root) / name
            found[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return found


def tmp_entries() -> list[str]:
    tmp = state_dir() / "tmp"
    return sorted(p.name for p in tmp.iterdir() if p.name != MARKER_FILE) if tmp.exists() else []


async def every_check(repo: Repository, repo_path: Path, tmp_path: Path, bin_dir: Path) -> int:
    """Each check once, problems and no problems alike; the number of problems found."""
    base = await head(repo)
    good = diff_of(repo_path, "stats.py", FIXED, tmp_path / "fix.diff")
    bad = tmp_path / "bad.diff"
    bad.write_text("--- a/stats.py\n+++ b/stats.py\n@@ -1 +1 @@\n-nope\n+new\n", encoding="utf-8")
    path = str(bin_dir)
    results = [
        await patch_problem(repo, base, good),
        await patch_problem(repo, base, bad),
        await patch_problem(repo, base, good, uncommitted=True),
        await diff_problem(repo, base, good.read_bytes(), "x", reverse=True),
        await command_problem(repo, base, ["scripts/check.sh"], path),
        await command_problem(repo, base, ["scripts/plain.sh"], path),
        await command_problem(repo, base, ["scripts/new.sh"], path),
        await command_problem(repo, base, ["scripts/new.sh"], path, uncommitted=True),
        await command_problem(repo, base, ["bin/check.sh"], path, patch=good),
        await command_problem(repo, base, ["pytets"], path),
        await command_problem(repo, base, [sys.executable], path),
        await seed_script_problem(repo, base, "token-race"),
        await seed_script_problem(repo, base, "absent"),
        await seed_script_problem(repo, base, "absent", uncommitted=True),
    ]
    return sum(result is not None for result in results)


def make_uncommitted_work(repo_path: Path) -> None:
    """Staged, unstaged and untracked changes of the user's, which must stay as they are."""
    (repo_path / "stats.py").write_text("staged\n", encoding="utf-8")
    git(repo_path, "add", "stats.py")
    (repo_path / "stats.py").write_text("staged, then edited\n", encoding="utf-8")
    new = repo_path / "scripts" / "new.sh"
    new.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    new.chmod(0o755)
    (repo_path / "debug.log").write_text("ignored\n", encoding="utf-8")


@pytest.mark.asyncio
async def test_the_users_checkout_is_byte_identical_afterwards(repo, repo_path, tmp_path, bin_dir):
    make_uncommitted_work(repo_path)
    before, before_git = fingerprint(repo_path), dot_git(repo_path)
    assert await every_check(repo, repo_path, tmp_path, bin_dir) > 5
    assert fingerprint(repo_path) == before
    assert dot_git(repo_path) == before_git
    assert tmp_entries() == []  # the temporary index is removed


@pytest.mark.asyncio
async def test_a_held_index_lock_changes_nothing(repo, repo_path, tmp_path, bin_dir):
    """Another git process holds the user's index.lock: the checks neither need nor touch it."""
    make_uncommitted_work(repo_path)
    lock = repo_path / ".git" / "index.lock"
    lock.write_bytes(b"held by another git process\n")
    before, before_git = fingerprint(repo_path), dot_git(repo_path)
    clean = await every_check(repo, repo_path, tmp_path, bin_dir)
    assert fingerprint(repo_path) == before
    assert dot_git(repo_path) == before_git
    assert lock.read_bytes() == b"held by another git process\n"
    lock.unlink()
    # The same answers as without the lock.
    assert await every_check(repo, repo_path, tmp_path, bin_dir) == clean
    assert tmp_entries() == []


@pytest.mark.asyncio
async def test_the_temporary_index_is_removed_when_git_fails(repo, tmp_path):
    patch = tmp_path / "fix.diff"
    patch.write_text("--- a/stats.py\n+++ b/stats.py\n@@ -1 +1 @@\n-a\n+b\n", encoding="utf-8")
    with pytest.raises(GitError):
        await patch_problem(repo, "0" * 40, patch)
    assert tmp_entries() == []
