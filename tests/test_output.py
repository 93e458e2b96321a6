"""Output capture: bounded memory whatever the test prints, exact bytes in the log files,
head + tail in the result, both streams read concurrently."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import live_tagged
from refute import FalsificationConfig, Hypothesis, TestExecutor, TestResult
from refute.engine.output import OutputCapture, log_marker
from refute.errors import ConfigError

PY = sys.executable
MIB = 1 << 20
MARKER = re.compile(
    r"\n\[\.\.\. refute: (\d+) bytes truncated"
    r"(; (?:full output|head and tail of the output) in (\S+))? \.\.\.\]\n"
)
LOG_MARKER = re.compile(
    rb"\n\[\.\.\. refute: (\d+) bytes of output dropped here; this log keeps the first"
    rb" (\d+) and the last (\d+) bytes \(log limit (\d+)\) \.\.\.\]\n"
)

# What the measured runs print: 200 chunks of 1 MiB (chunk i is filled with letter i % 26),
# or one 1 MiB line without a newline.
BULK_WRITER = (
    "import sys\n"
    "w = sys.stdout.buffer\n"
    "for i in range(200):\n"
    "    w.write(bytes([65 + i % 26]) * (1 << 20))\n"
    "w.flush()\n"
)
LINE_WRITER = "import sys\nsys.stdout.buffer.write(b'z' * (1 << 20))\n"

# Runs in a fresh interpreter so that its peak RSS is the executor's alone (the writer is
# a grandchild: its memory is not counted in RUSAGE_SELF).
RSS_CHILD = r"""
import json, resource, sys
from pathlib import Path
from refute import AsyncTestExecutor, FalsificationConfig, Hypothesis

writer, wt, log_dir, limit = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
config = FalsificationConfig(
    max_concurrent_tests=1,
    kill_grace_period=0.5,
    output_limit_bytes=limit,
    log_dir=Path(log_dir) if log_dir else None,
)
ex = AsyncTestExecutor(config)

def run(hid, code):
    hyp = Hypothesis(id=hid, description="x", test=[sys.executable, "-c", code], timeout=120)
    [result] = ex.execute_parallel([hyp], {hid: wt})
    return result

run("warmup", "import sys; sys.stdout.write('w' * 300000)")  # pay for imports and buffers first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = run("measured", writer)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after, "result": result.to_dict()}))
"""


def _hyp(hid: str, argv: list[str], timeout: float = 30.0) -> Hypothesis:
    return Hypothesis(id=hid, description=f"test {hid}", test=argv, timeout=timeout)


def _worktree(tmp_path: Path) -> Path:
    path = tmp_path / "wt"
    path.mkdir(exist_ok=True)
    return path


def _run_measured(tmp_path: Path, writer: str, log_dir: Path | None, limit: int) -> dict:
    proc = subprocess.run(
        [PY, "-c", RSS_CHILD, writer, str(_worktree(tmp_path)), str(log_dir or ""), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _assert_bounded_text(text: str, limit: int, total: int, log: str) -> None:
    match = MARKER.search(text)
    assert match is not None, text[:200]
    assert int(match.group(1)) == total - limit
    assert (match.group(3) or "") == log
    assert len(text) <= limit + len(match.group(0))
    assert len(text) - len(match.group(0)) == limit


@pytest.mark.parametrize("with_log", [True, False], ids=["log_dir", "no_log_dir"])
def test_200_mib_of_output_keeps_the_executor_small(tmp_path, test_tag, with_log):
    limit = 64 * 1024
    log_dir = tmp_path / "logs" if with_log else None
    report = _run_measured(tmp_path, BULK_WRITER, log_dir, limit)
    growth_mib = (report["after_kib"] - report["before_kib"]) / 1024
    assert growth_mib < 40, f"peak RSS grew by {growth_mib:.1f} MiB for 200 MiB of output"

    result = report["result"]
    total = 200 * MIB
    assert result["result"] == "pass", result["error_message"]
    assert result["metrics"]["stdout_bytes"] == total
    assert result["metrics"]["stdout_truncated"] is True
    assert result["metrics"]["stderr_truncated"] is False
    stdout = result["stdout"]
    half = limit // 2
    assert stdout.startswith("A" * half)  # the first chunk's head
    assert stdout.endswith(chr(65 + 199 % 26) * half)  # the last chunk's tail
    if with_log:
        log = Path(result["stdout_log"])
        assert log == log_dir / "measured.run1.stdout.log"
        _assert_bounded_text(stdout, limit, total, str(log))
        # The log is capped while it is written (64 MiB by default): its first 32 MiB, a
        # marker, its last 32 MiB; the result says so.
        cap = 64 * MIB
        assert result["metrics"]["stdout_log_dropped"] == total - cap
        assert any("stdout log capped" in note for note in result["metrics"]["notes"])
        with log.open("rb") as handle:
            for i in range(32):
                assert handle.read(MIB) == bytes([65 + i % 26]) * MIB, f"chunk {i} differs"
            line = handle.read(300)
            match = LOG_MARKER.match(line)
            assert match is not None, line
            assert [int(g) for g in match.groups()] == [total - cap, cap // 2, cap // 2, cap]
            handle.seek(32 * MIB + match.end())
            for i in range(168, 200):
                assert handle.read(MIB) == bytes([65 + i % 26]) * MIB, f"chunk {i} differs"
            assert handle.read(1) == b""
        assert log.stat().st_size == cap + match.end()
        assert Path(result["stderr_log"]).stat().st_size == 0
    else:
        assert result["stdout_log"] == ""
        _assert_bounded_text(stdout, limit, total, "")
    assert live_tagged(test_tag) == []


def test_one_mib_line_without_newline(tmp_path, test_tag):
    limit = 64 * 1024
    log_dir = tmp_path / "logs"
    report = _run_measured(tmp_path, LINE_WRITER, log_dir, limit)
    growth_mib = (report["after_kib"] - report["before_kib"]) / 1024
    assert growth_mib < 40
    result = report["result"]
    assert result["result"] == "pass", result["error_message"]
    assert result["metrics"]["stdout_bytes"] == MIB
    assert result["metrics"]["stdout_truncated"] is True
    stdout = result["stdout"]
    assert stdout.startswith("z" * (limit // 2))
    assert stdout.endswith("z" * (limit // 2))
    log = Path(result["stdout_log"])
    _assert_bounded_text(stdout, limit, MIB, str(log))
    assert log.read_bytes() == b"z" * MIB
    assert live_tagged(test_tag) == []


def test_invalid_utf8_survives(tmp_path, test_tag):
    raw_out = b"ok\xff\xfe\xc3("
    raw_err = b"\x80err\xc3"
    code = (
        f"import sys\nsys.stdout.buffer.write({raw_out!r})\nsys.stderr.buffer.write({raw_err!r})\n"
    )
    log_dir = tmp_path / "logs"
    hyp = _hyp("bytes", [PY, "-c", code])
    executor = TestExecutor(FalsificationConfig(kill_grace_period=0.5, log_dir=log_dir))
    [result] = executor.execute_parallel([hyp], {"bytes": _worktree(tmp_path)})
    assert result.result is TestResult.PASS
    assert Path(result.stdout_log).read_bytes() == raw_out
    assert Path(result.stderr_log).read_bytes() == raw_err
    assert Path(result.stdout_log) == log_dir / "bytes.run1.stdout.log"
    assert Path(result.stderr_log) == log_dir / "bytes.run1.stderr.log"
    assert result.stdout == raw_out.decode("utf-8", errors="replace")
    assert "\ufffd" in result.stdout
    assert result.stdout.startswith("ok")
    assert "\ufffd" in result.stderr
    assert "err" in result.stderr
    assert result.metrics["stdout_bytes"] == len(raw_out)
    assert result.metrics["stdout_truncated"] is False
    json.dumps(result.to_dict())  # the result is plain, serializable text


def test_head_and_tail_are_kept(tmp_path, test_tag):
    limit = 1024
    code = "import sys; sys.stdout.write('A' * 5000 + 'B' * 5000)"
    hyp = _hyp("ht", [PY, "-c", code])
    executor = TestExecutor(FalsificationConfig(kill_grace_period=0.5, output_limit_bytes=limit))
    [result] = executor.execute_parallel([hyp], {"ht": _worktree(tmp_path)})
    assert result.result is TestResult.PASS
    assert result.metrics["stdout_bytes"] == 10_000
    assert result.metrics["stdout_truncated"] is True
    match = MARKER.search(result.stdout)
    assert match is not None
    assert int(match.group(1)) == 10_000 - limit
    assert match.group(2) is None  # no log directory, so no path is promised
    head, tail = result.stdout[: match.start()], result.stdout[match.end() :]
    assert head == "A" * (limit // 2)
    assert tail == "B" * (limit - limit // 2)


def test_output_at_the_limit_is_not_truncated(tmp_path, test_tag):
    limit = 1024
    code = "import sys; sys.stdout.write('A' * 600 + 'B' * 424)"
    hyp = _hyp("exact", [PY, "-c", code])
    executor = TestExecutor(FalsificationConfig(kill_grace_period=0.5, output_limit_bytes=limit))
    [result] = executor.execute_parallel([hyp], {"exact": _worktree(tmp_path)})
    assert result.stdout == "A" * 600 + "B" * 424
    assert result.metrics["stdout_truncated"] is False


def test_stdout_and_stderr_are_read_concurrently(tmp_path, test_tag):
    # Chunks far larger than a pipe buffer, alternating between the streams: a reader that
    # drained one stream before the other would deadlock with the writer.
    code = (
        "import sys\n"
        "out, err = sys.stdout.buffer, sys.stderr.buffer\n"
        "for _ in range(4):\n"
        "    out.write(b'o' * (256 * 1024)); out.flush()\n"
        "    err.write(b'e' * (256 * 1024)); err.flush()\n"
    )
    log_dir = tmp_path / "logs"
    limit = 1024
    hyp = _hyp("both", [PY, "-c", code], timeout=30)
    executor = TestExecutor(
        FalsificationConfig(kill_grace_period=0.5, output_limit_bytes=limit, log_dir=log_dir)
    )
    [result] = executor.execute_parallel([hyp], {"both": _worktree(tmp_path)})
    assert result.result is TestResult.PASS, result.error_message
    assert result.duration < 10
    assert result.metrics["stdout_bytes"] == MIB
    assert result.metrics["stderr_bytes"] == MIB
    assert result.metrics["stdout_truncated"] is True
    assert result.metrics["stderr_truncated"] is True
    assert set(MARKER.sub("", result.stdout)) == {"o"}
    assert set(MARKER.sub("", result.stderr)) == {"e"}
    assert Path(result.stdout_log).read_bytes() == b"o" * MIB
    assert Path(result.stderr_log).read_bytes() == b"e" * MIB
    assert live_tagged(test_tag) == []


# -- the log cap ----------------------------------------------------------------------------


def _capture_log(
    tmp_path: Path, chunks: list[bytes], log_limit: int
) -> tuple[OutputCapture, bytes]:
    log = tmp_path / "capture.log"
    capture = OutputCapture(64, log, log_limit)
    for chunk in chunks:
        capture.feed(chunk)
    capture.close()
    return capture, log.read_bytes()


@pytest.mark.parametrize("seed", range(6))
def test_capped_log_keeps_head_and_tail_of_any_chunking(tmp_path, seed):
    rng = random.Random(seed)
    log_limit = rng.choice([4096, 5000, 8191])
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40_000)))
    chunks, at = [], 0
    while at < len(data):
        size = rng.choice([1, 7, 100, 4095, 4097, 12_000])
        chunks.append(data[at : at + size])
        at += size
    capture, text = _capture_log(tmp_path, chunks, log_limit)
    head, tail = log_limit // 2, log_limit - log_limit // 2
    if len(data) <= log_limit:
        assert text == data
        assert capture.log_dropped == 0
        return
    dropped = len(data) - log_limit
    marker = log_marker(dropped, head, tail)
    assert capture.log_dropped == dropped
    assert text == data[:head] + marker + data[-tail:]


def test_log_at_the_cap_is_whole(tmp_path):
    capture, text = _capture_log(tmp_path, [b"a" * 3000, b"b" * 1096], 4096)
    assert text == b"a" * 3000 + b"b" * 1096
    assert capture.log_dropped == 0
    capture, text = _capture_log(tmp_path, [b"a" * 3000, b"b" * 1097], 4096)
    assert capture.log_dropped == 1
    assert text == b"a" * 2048 + log_marker(1, 2048, 2048) + (b"a" * 952 + b"b" * 1097)[-2048:]


def test_log_never_exceeds_the_cap_while_written(tmp_path):
    log = tmp_path / "live.log"
    capture = OutputCapture(64, log, 8192)
    for i in range(2000):
        capture.feed(bytes([97 + i % 26]) * 1000)
        assert log.stat().st_size <= 8192
    capture.close()
    assert log.stat().st_size <= 8192 + 200
    assert capture.log_dropped == 2_000_000 - 8192


def test_log_limit_is_a_config_field_with_bounds(tmp_path, test_tag):
    code = "import sys; sys.stdout.buffer.write(b'x' * 10000 + b'y' * 10000)"
    log_dir = tmp_path / "logs"
    config = FalsificationConfig(
        kill_grace_period=0.5, log_dir=log_dir, log_limit_bytes=8192, output_limit_bytes=1024
    )
    [result] = TestExecutor(config).execute_parallel(
        [_hyp("cap", [PY, "-c", code])], {"cap": _worktree(tmp_path)}
    )
    assert result.result is TestResult.PASS, result.error_message
    assert result.metrics["stdout_log_dropped"] == 20000 - 8192
    assert "stderr_log_dropped" not in result.metrics
    text = Path(result.stdout_log).read_bytes()
    assert text == b"x" * 4096 + log_marker(20000 - 8192, 4096, 4096) + b"y" * 4096
    assert "head and tail of the output in" in result.stdout
    for bad in (4095, 4 * 1024**3 + 1, True, 1.5):
        with pytest.raises(ConfigError, match="log_limit_bytes"):
            FalsificationConfig(log_limit_bytes=bad)
    assert live_tagged(test_tag) == []
