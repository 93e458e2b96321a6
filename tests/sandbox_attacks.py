"""The documented attacks on the user's repository, as one test program, and the repository
they are aimed at (shared by tests/test_sandbox.py and tests/faults/test_fault_sandbox.py).

`ATTACK` runs as a hypothesis' test (cwd: its worktree). It reads its targets from a JSON
file named on its command line (so no path of the user's checkout appears in the plan,
which refute would refuse as a leak), tries every attack, records for each "ok" or why it
failed (an errno name, or "git: <its last line>"), writes that record into the report
directory (outside the checkout: /tmp must stay writable) and exits 1.

`HOLDER` keeps a second worktree of the pool leased until the attack is done, so the
attacker has a sibling's worktree to remove.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from gitutil import fingerprint, git, make_repo

ATTACK = r"""
import ctypes, errno, json, os, shutil, subprocess, sys
from pathlib import Path

conf = json.loads(Path(sys.argv[1]).read_text())
repo = Path(conf["repo"])
common = Path(conf["common"])
out = {}


def why(exc):
    if isinstance(exc, subprocess.CalledProcessError):
        lines = (exc.stderr or "").strip().splitlines()
        return "git: " + (lines[-1] if lines else f"exit {exc.returncode}")
    if isinstance(exc, OSError):
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def attempt(name, action):
    try:
        action()
        out[name] = "ok"
    except (OSError, subprocess.CalledProcessError) as exc:
        out[name] = why(exc)


def run_git(*args):
    subprocess.run(["git", *args], check=True, capture_output=True, text=True)


def commit_here():
    Path("own.txt").write_text("mine\n")
    run_git("add", "own.txt")
    run_git("commit", "-q", "-m", "the test's own commit")


def siblings():
    own = Path.cwd().resolve()
    slots = own.parent
    return [p for p in sorted(slots.iterdir()) if p.resolve() != own and (p / ".git").exists()]


def remove_sibling():
    found = siblings()
    if not found:
        raise FileNotFoundError(errno.ENOENT, "no sibling worktree")
    shutil.rmtree(found[0])


libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]


def syscall(result):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def remount_rw():  # MS_REMOUNT | MS_BIND, without MS_RDONLY
    syscall(libc.mount(None, os.fsencode(repo), None, 32 | 4096, None))


def unmount():  # MNT_DETACH
    syscall(libc.umount2(os.fsencode(repo), 2))


def nested_remount():  # a user+mount namespace of its own, then the remount
    syscall(libc.unshare(0x10000000 | 0x00020000))
    remount_rw()


attempt("own_write", lambda: Path("own-file.txt").write_text("mine\n"))
attempt("own_commit", commit_here)
attempt("write_checkout", lambda: (repo / "README.md").write_text("pwned\n"))
attempt("create_in_checkout", lambda: (repo / "planted.txt").write_text("pwned\n"))
attempt("hook", lambda: (common / "hooks" / "pre-commit").write_text("#!/bin/sh\n"))
attempt("branch_f", lambda: run_git("branch", "-f", "other", "HEAD"))
attempt("update_ref", lambda: run_git("update-ref", "refs/heads/main", "HEAD"))
attempt("config", lambda: run_git("config", "user.name", "pwned"))
attempt("stash_clear", lambda: run_git("stash", "clear"))
attempt("remove_user_worktree", lambda: shutil.rmtree(conf["user_worktree"]))
attempt("remove_sibling", remove_sibling)
proc_root = Path(f"/proc/{os.getppid()}/root{repo}") / "README.md"
attempt("proc_root", lambda: proc_root.write_text("pwned\n"))
if conf["sandboxed"]:  # never aimed at the host's own mounts
    attempt("remount_rw", remount_rw)
    attempt("write_after_remount", lambda: (repo / "README.md").write_text("pwned\n"))
    attempt("umount", unmount)
    attempt("nested_remount", nested_remount)
    attempt("write_after_nested", lambda: (repo / "README.md").write_text("pwned\n"))
attempt("tmp_write", lambda: Path(conf["report_dir"], "tmp-probe").write_text("ok\n"))
name = os.environ.get("ATTACKER", "attack")
Path(conf["report_dir"], name + ".json").write_text(json.dumps(out, indent=1))
Path(conf["report_dir"], name + ".done").write_text("")
sys.exit(1)
"""

HOLDER = r"""
import json, sys, time
from pathlib import Path

conf = json.loads(Path(sys.argv[1]).read_text())
done = Path(conf["report_dir"], "attack.done")
deadline = time.monotonic() + 90
while not done.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(1)
"""

#: Attacks that damage the user's repository: each must fail in the sandbox and (a
#: documented limit) succeed without it.
DAMAGING = (
    "write_checkout",
    "create_in_checkout",
    "hook",
    "branch_f",
    "update_ref",
    "config",
    "stash_clear",
    "remove_user_worktree",
    "remove_sibling",
    "proc_root",
)
#: What a sandboxed test may still do.
ALLOWED = ("own_write", "own_commit", "tmp_write")
#: Attempts to undo the sandbox from inside (only made in the sandbox).
ESCAPES = ("remount_rw", "write_after_remount", "umount", "nested_remount", "write_after_nested")


def target_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A user's repository with what the attacks aim at: a branch `other`, a stash entry,
    a linked worktree of the user's own; returns (repo, the attack's config file)."""
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n", "src/app.py": "print(1)\n"})
    git(repo, "branch", "other")
    (repo / "README.md").write_text("work in progress\n", encoding="utf-8")
    git(repo, "stash", "-q")
    user_worktree = tmp_path / "user-worktree"
    git(repo, "worktree", "add", "-q", str(user_worktree), "-b", "feature")
    reports = tmp_path / "reports"
    reports.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "attack.py").write_text(ATTACK, encoding="utf-8")
    (scripts / "holder.py").write_text(HOLDER, encoding="utf-8")
    return repo, scripts / "targets.json"


def write_targets(conf_path: Path, repo: Path, *, sandboxed: bool) -> Path:
    """The attack's targets; returns the report directory (emptied)."""
    tmp_path = conf_path.parent.parent
    reports = tmp_path / "reports"
    for old in reports.iterdir():
        old.unlink()
    conf: dict[str, Any] = {
        "repo": str(repo),
        "common": str(repo / ".git"),
        "user_worktree": str(tmp_path / "user-worktree"),
        "report_dir": str(reports),
        "sandboxed": sandboxed,
    }
    conf_path.write_text(json.dumps(conf), encoding="utf-8")
    return reports


def attack_argv(conf_path: Path) -> list[str]:
    return [sys.executable, str(conf_path.parent / "attack.py"), str(conf_path)]


def holder_argv(conf_path: Path) -> list[str]:
    return [sys.executable, str(conf_path.parent / "holder.py"), str(conf_path)]


def repository_state(repo: Path) -> dict[str, object]:
    """Everything the attacks could change: the checkout's fingerprint (files, HEAD, refs,
    stash, status, index), the bytes of every file under `.git` (config, refs, hooks,
    the user's worktree's admin directory) but the object store and refute's own
    worktrees' admin directories, and the files of the user's other worktree."""
    state = fingerprint(repo)
    git_files = {}
    for root, dirs, names in os.walk(repo / ".git"):
        here = Path(root)
        # The object store may grow (tests may commit); refute's own worktrees' admin
        # directories come and go with its pool. The user's worktree's is kept.
        if here == repo / ".git":
            dirs[:] = [d for d in dirs if d != "objects"]
        elif here == repo / ".git" / "worktrees":
            dirs[:] = [d for d in dirs if d == "user-worktree"]
        for name in names:
            full = Path(root, name)
            rel = str(full.relative_to(repo / ".git"))
            git_files[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    state["git_files"] = git_files
    user_worktree = repo.parent / "user-worktree"
    state["user_worktree"] = (
        fingerprint(user_worktree)["files"] if user_worktree.exists() else "missing"
    )
    return state


def read_report(reports: Path, name: str = "attack") -> dict[str, str]:
    data: dict[str, str] = json.loads((reports / f"{name}.json").read_text(encoding="utf-8"))
    return data
