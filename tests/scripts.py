"""Test programs shared by the process-tree and backend-contract tests (run with `-c`)."""

# Forks; the child calls setsid and forks again; the grandchild (the daemon) points its stdio
# at /dev/null, records its pid and sleeps. The main process waits for the pid file, then
# either sleeps past its timeout ("timeout") or exits at once ("exit").
DOUBLE_FORK_DAEMON = r"""
import os, sys, time
mode, pidfile = sys.argv[1], sys.argv[2]
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        time.sleep(300)
    os._exit(0)
os.waitpid(pid, 0)
deadline = time.monotonic() + 30
while not os.path.exists(pidfile) and time.monotonic() < deadline:
    time.sleep(0.01)
print("main done waiting", flush=True)
if mode == "timeout":
    time.sleep(300)
"""
