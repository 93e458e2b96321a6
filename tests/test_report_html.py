"""The HTML report: its timeline's ticks and broken axis, its labels and tones, and the
page as a real headless Chromium lays it out at 700 px.

The browser tests load the report in a same-origin `<iframe>` of a wrapper page written
here, whose script measures the report's layout and writes the numbers into its own DOM;
`chromium --dump-dom` prints them. Nothing is injected into the report itself. Chromium's
console messages (`--enable-logging=stderr`) and its network log (`--log-net-log`) show
console errors and requests the page made; a control page with an error and an external
image proves that both would be seen. They skip only when no Chromium binary is found.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from refute.reports import render
from refute.reports._common import TONE_CSS
from refute.reports._timeline import MIN_SHARE, Axis, tick_step, tick_values, time_label
from reportdocs import make_document, make_hypothesis, make_run

# --- ticks: pure ----------------------------------------------------------------------

SPANS = (0.003, 0.05, 0.7, 1.0, 1.2, 2.9, 4.3, 9.9, 59, 61, 150, 600, 3599, 7200, 1e5, 4e6)
UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Round steps, written out by hand: 1-2-5 of ms and s, then round minutes, hours, days.
ROUND_STEPS = {
    *(m * 10.0**e for e in (-3, -2, -1, 0, 1) for m in (1, 2, 5) if m * 10.0**e <= 20),
    60, 120, 300, 600, 1200, 3600, 7200, 18000, 36000,
    *(m * 10**e * 86400 for e in range(4) for m in (1, 2, 5)),
}  # fmt: skip


def parse_label(label: str) -> float:
    """A tick label back to seconds: "0", "500ms", "1.5s", "1m20s", "1h20m", "2d"."""
    if label == "0":
        return 0.0
    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+", label)
    assert parts, f"not a time with units: {label!r}"
    return sum(float(n) * UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", label))


@pytest.mark.parametrize("span", SPANS)
def test_ticks_are_round_unique_labelled_and_cover_the_span(span):
    step = tick_step(span)
    assert any(step == pytest.approx(s) for s in ROUND_STEPS), step
    values = tick_values(0, span, step)
    labels = [time_label(v, step) for v in values]
    assert len(set(labels)) == len(labels), labels
    assert 3 <= len(values) <= 7, labels  # enough to read, few enough to fit
    assert values[0] == 0
    assert labels[0] == "0"
    assert values[-1] <= span
    assert span - values[-1] < step  # no stretch at the end without a tick
    for value, label in zip(values, labels, strict=True):
        assert parse_label(label) == pytest.approx(value, rel=1e-9, abs=1e-9), label
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(values)}
    assert len(gaps) == 1  # evenly spaced


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (4.3, ["0", "1s", "2s", "3s", "4s"]),
        (2.9, ["0", "500ms", "1s", "1.5s", "2s", "2.5s"]),
        (1.2, ["0", "200ms", "400ms", "600ms", "800ms", "1s", "1.2s"]),
        (600, ["0", "2m", "4m", "6m", "8m", "10m"]),
        (7200, ["0", "20m", "40m", "1h", "1h20m", "1h40m", "2h"]),
    ],
)
def test_tick_labels_read_as_people_write_times(span, labels):
    step = tick_step(span)
    assert [time_label(v, step) for v in tick_values(0, span, step)] == labels


def lanes_of(doc: dict[str, Any]) -> list[tuple[float, float]]:
    runs = [*doc["control"]["runs"], *(r for h in doc["hypotheses"] for r in h["runs"])]
    return [
        (r["started_at"], r["started_at"] + r["duration"])
        for r in runs
        if r["metrics"].get("slot") is not None
    ]


def test_an_even_session_has_a_linear_axis():
    intervals = lanes_of(make_document())
    axis = Axis(intervals)
    assert axis.cuts == []
    assert axis.span == pytest.approx(4.3)
    for start, end in intervals:
        left, width = axis.box(start, end - start)
        assert left == pytest.approx((start - axis.origin) / 4.3)
        assert width == pytest.approx((end - start) / 4.3)
    assert [t.label for t in axis.ticks()] == ["0", "1s", "2s", "3s", "4s"]


#: The longest id that is never broken (32 characters), with hyphens a browser would break at.
SLOW_ID = "slow-path-in-token-cache-refresh"


def dominated_document(fast: int = 30, hid: str = "fast-path") -> dict[str, Any]:
    """One 600 s run in slot 0 beside `fast` runs of 0.2 s, one after another, in slot 1."""
    doc = make_document()
    slow = [make_run(SLOW_ID, "fail", slot=0, start=1.0, duration=600.0)]
    quick = [
        make_run(hid, "pass", attempt=i + 1, slot=1, start=1.0 + i * 0.2, duration=0.2)
        for i in range(fast)
    ]
    doc["hypotheses"] = [
        make_hypothesis(SLOW_ID, 1, "supported", slow),
        make_hypothesis(hid, 2, "falsified", quick),
    ]
    doc["summary"]["survivors"] = [SLOW_ID]
    return doc


def test_one_long_run_does_not_squeeze_the_short_ones():
    intervals = lanes_of(dominated_document())
    linear = 0.2 / (601.0)
    axis = Axis(intervals)
    assert len(axis.cuts) == 1
    cut = axis.cuts[0]
    assert cut.start > 6.0  # after the last short run ends (at 7 s)
    assert cut.end < 601.0  # before the long run ends
    boxes = [axis.box(start, end - start) for start, end in intervals]
    short = [
        width for (start, end), (_, width) in zip(intervals, boxes, strict=True) if end - start < 1
    ]
    assert min(short) >= MIN_SHARE > 10 * linear  # ten times wider than on a linear axis
    slow_left, slow_width = boxes[1]  # the 600 s run reaches the end of the axis
    assert slow_left + slow_width == pytest.approx(1.0)
    # Boxes in one lane keep their order and do not overlap.
    lane = sorted(b for (s, e), b in zip(intervals, boxes, strict=True) if e - s < 1)
    for (left, width), (next_left, _) in itertools.pairwise(lane):
        assert left + width <= next_left + 1e-6
    ticks = axis.ticks()
    labels = [t.label for t in ticks]
    assert len(set(labels)) == len(labels)
    assert [t.seconds for t in ticks] == sorted(t.seconds for t in ticks)
    assert any(t.seconds >= 599 for t in ticks), labels  # the far side of the cut is labelled
    assert "10m" in labels
    for tick, after in itertools.pairwise(ticks):
        assert tick.extent[1] <= after.extent[0] + 1e-9, (tick, after)
    assert all(t.extent[0] >= 0 and t.extent[1] <= 1 + 1e-9 for t in ticks), ticks


def test_a_long_pause_is_cut_and_both_sides_keep_true_ticks():
    day = 86_400.0
    axis = Axis([(0, 5), (0, 4), (day, day + 5)])  # a session resumed a day later
    assert len(axis.cuts) == 1
    for tick in axis.ticks():
        assert parse_label(tick.label) == pytest.approx(tick.seconds)
        assert tick.share == pytest.approx(axis.share(tick.seconds))
    assert axis.ticks()[-1].seconds >= day


# --- the page, parsed -----------------------------------------------------------------


class Page(HTMLParser):
    """Elements with their attributes and the text inside each (by element index)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[list[str]] = []
        self.open: list[int] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self.texts.append([])
        if tag not in {"meta", "br", "wbr"}:
            self.open.append(len(self.elements) - 1)

    def handle_endtag(self, tag):
        del tag  # every element here is closed in order (test_reports checks it)
        self.open.pop()

    def handle_data(self, data):
        for index in self.open:
            self.texts[index].append(data)

    def find(self, cls: str) -> list[tuple[dict[str, str], str]]:
        return [
            (attrs, "".join(self.texts[i]))
            for i, (_, attrs) in enumerate(self.elements)
            if cls in attrs.get("class", "").split()
        ]


def test_each_box_shows_its_attempt_first():
    page = Page(render(make_document(), "html"))
    boxes = page.find("run")
    assert len(boxes) == 7  # clock-skew #2 never ran: it is listed, not drawn
    for attrs, text in boxes:
        hid, attempt = attrs["data-run"].rsplit(" #", 1)
        assert text == f"#{attempt} {hid}"
    assert "#3 retry-storm" in [text for _, text in boxes]


def test_a_verdict_and_the_runs_behind_it_share_a_tone():
    page = Page(render(make_document(), "html"))
    badge = {text: attrs["class"] for attrs, text in page.find("verdict")}
    boxes = {attrs["data-run"]: attrs["class"] for attrs, _ in page.find("run")}
    # token-race (probe) failed: its run speaks for it, like its "supported" badge.
    assert "t-survives" in badge["supported"]
    assert "t-survives" in boxes["token-race #1"]
    # cache-stale passed: its run speaks against it, like its "falsified" badge.
    assert "t-ruled_out" in badge["falsified"]
    assert "t-ruled_out" in boxes["cache-stale #1"]
    assert "t-unclear" in boxes["clock-skew #1"]  # a skip is no evidence
    # A candidate fix reads the other way: a pass supports it, in the same colour.
    doc = make_document()
    hyp = doc["hypotheses"][1]
    hyp.update(supported_if="passes", verdict="supported", patch="fixes/cache.diff")
    page = Page(render(doc, "html"))
    boxes = {attrs["data-run"]: attrs["class"] for attrs, _ in page.find("run")}
    assert "t-survives" in boxes["cache-stale #1"]
    css = render(doc, "html")
    assert f".t-survives{{background:{TONE_CSS['survives']}" in css
    assert f".t-ruled_out{{background:{TONE_CSS['ruled_out']}" in css


def test_the_legend_names_every_tone():
    page = Page(render(make_document(), "html"))
    (legend,) = page.find("legend")
    for word in ("survives", "ruled out", "unclear", "pending"):
        assert f"{word}:" in legend[1]
    swatches = [attrs["class"] for attrs, _ in page.find("swatch")]
    for tone in TONE_CSS:
        assert f"swatch t-{tone}" in swatches


def test_each_hypothesis_shows_its_command_change_and_reading():
    doc = make_document()
    doc["hypotheses"][1].update(supported_if="passes", patch="fixes/cache.diff")
    page = Page(render(doc, "html"))
    rows = [text for attrs, text in page.find("facts")]
    assert len(rows) == 2 * 4  # in the verdict table and in each hypothesis' section
    cache = [text for text in rows if "test_cache-stale.py" in text]
    assert len(cache) == 2
    for text in cache:
        assert "candidate fix: the reproduction passes with the patch" in text
        assert "change: patch fixes/cache.diff" in text
        assert "command: pytest -x tests/test_cache-stale.py" in text
    token = next(text for text in rows if "test_token-race.py" in text)
    assert "probe: the test fails (reproduces the bug) if the hypothesis holds" in token
    assert "change:" not in token


LONG_ID = "checkout-" + "x" * 36 + "-token_refresh.race"


def test_a_long_id_breaks_only_between_its_parts():
    assert len(LONG_ID) == 64
    page = render(dominated_document(hid=LONG_ID), "html")
    longs = re.findall(r'<code class="id long">(.*?)</code>', page)
    assert len(longs) == 2  # in the verdict table and its section's heading
    for inner in longs:
        pieces = re.findall(r"<span>([^<]*)</span>", inner)
        assert "".join(f"<span>{p}</span>" for p in pieces) == inner
        assert pieces == [
            "checkout-",
            "x" * 16,
            "x" * 16,
            "x" * 4 + "-",
            "token_",
            "refresh.",
            "race",
        ]
    short = Page(page).find("id")
    assert [text for attrs, text in short if "long" not in attrs["class"]] == [SLOW_ID] * 2
    assert f'<code class="id">{SLOW_ID}</code>' in page  # one unbreakable piece


# --- the page in a real browser ---------------------------------------------------------

BROWSER = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium binary (chromium, chromium-browser, google-chrome) on PATH; .ci/run "
    "installs Debian's chromium where it can",
)

#: Flags for a quiet, offline, throwaway browser: no host name resolves, nothing of
#: Chromium's own (updates, sync, ...) runs, and a proxy on a closed loopback port.
OFFLINE = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,SpellCheck",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
]


def chromium(tmp: Path, name: str, *args: str) -> tuple[str, str, Path]:
    """Runs Chromium (its own session, killed whole after, or at 60 s); returns stdout,
    stderr and the path of its network log."""
    assert BROWSER is not None
    netlog = tmp / f"{name}.netlog.json"
    argv = [
        BROWSER,
        *OFFLINE,
        f"--user-data-dir={tmp / (name + '.profile')}",
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={netlog}",
        *args,
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish in 60 s: {argv}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers it may have left behind
    assert gone(proc.pid), "chromium processes were left behind"
    assert proc.returncode == 0, err[-3000:]
    return out, err, netlog


def gone(group: int, wait: float = 10.0) -> bool:
    """Whether the process group is gone (killed helpers take a moment to be reaped)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def page_requests(netlog: Path) -> list[str]:
    """URLs a file:// page asked the network for (Chromium's own requests have another
    network isolation key)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and "file://" in event["params"].get("network_isolation_key", "")
        and not event["params"]["url"].startswith("file:")
    ]


MEASURE = r"""
function lines(e) { return new Set([...e.getClientRects()].map(r => Math.round(r.top))).size; }
function rect(e) { const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; }
function measure(frame) {
  const d = frame.contentDocument, root = d.documentElement, out = {};
  out.scrollWidth = root.scrollWidth; out.clientWidth = root.clientWidth;
  out.sticksOut = [...d.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > root.clientWidth + 0.5)
    .map(e => e.tagName + '.' + e.className).slice(0, 10);
  out.ids = [...d.querySelectorAll('code.id')].map(e => ({
    text: e.textContent, lines: lines(e), long: e.classList.contains('long'),
    parts: [...e.querySelectorAll('span')].map(s => lines(s))}));
  const axis = d.querySelector('.axis');
  out.axis = axis ? rect(axis) : null;
  out.ticks = [...d.querySelectorAll('.tick-label')]
    .map(e => ({text: e.textContent, rect: rect(e)}));
  out.boxes = [...d.querySelectorAll('.run')].map(e => ({run: e.dataset.run,
    rect: rect(e), att: rect(e.querySelector('.att')), bg: getComputedStyle(e).backgroundColor}));
  out.badges = [...d.querySelectorAll('.verdict')].map(e => ({text: e.textContent,
    bg: getComputedStyle(e).backgroundColor}));
  out.legend = [...d.querySelectorAll('.legend li')].map(e => e.textContent);
  return out;
}
window.addEventListener('load', () => {
  const result = {};
  for (const frame of document.querySelectorAll('iframe')) {
    try { result[frame.id] = measure(frame); } catch (e) { result[frame.id] = {error: String(e)}; }
  }
  document.getElementById('result').textContent = JSON.stringify(result);
});
"""


def measure(tmp: Path, reports: dict[str, str]) -> tuple[dict[str, Any], str, Path]:
    """Loads each report in a 700 px wide iframe of a wrapper page and measures it."""
    frames = []
    for name, page in reports.items():
        (tmp / f"{name}.html").write_text(page, encoding="utf-8")
        frames.append(
            f'<iframe id="{name}" src="{name}.html" style="border:0;width:700px;height:900px">'
            "</iframe>"
        )
    wrapper = tmp / "wrapper.html"
    wrapper.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        + "".join(frames)
        + f'<pre id="result">not measured</pre><script>{MEASURE}</script></body></html>',
        encoding="utf-8",
    )
    out, err, netlog = chromium(
        tmp,
        "measure",
        "--allow-file-access-from-files",
        "--window-size=800,1000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        wrapper.as_uri(),
    )
    found = re.search(r'<pre id="result">(.*?)</pre>', out, re.DOTALL)
    assert found, out[-2000:]
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<")), err, netlog


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@needs_browser
@pytest.mark.slow
def test_the_report_reads_at_700px_in_a_real_browser(tmp_path):
    long_doc = dominated_document(hid=LONG_ID)
    results, stderr, netlog = measure(
        tmp_path,
        {"even": render(make_document(), "html"), "dominated": render(long_doc, "html")},
    )
    assert console_messages(stderr) == []
    assert page_requests(netlog) == []
    for name, found in results.items():
        assert "error" not in found, found
        # No sideways scrolling, and nothing sticks out of the window.
        assert found["scrollWidth"] <= found["clientWidth"], (name, found["sticksOut"])
        assert found["sticksOut"] == [], name
        # Ids: a short one is never broken (no "token-" / "race"), a long one only between parts.
        for code in found["ids"]:
            if code["long"]:
                assert all(n == 1 for n in code["parts"]), code
            else:
                assert code["lines"] == 1, code
        # Tick labels: unique, apart, inside the axis.
        ticks = found["ticks"]
        texts = [t["text"] for t in ticks]
        assert len(set(texts)) == len(texts) >= 3, texts
        left, right = found["axis"][:2]
        for tick, after in itertools.pairwise(ticks):
            assert tick["rect"][1] <= after["rect"][0], (tick, after)
        for tick in ticks:
            assert tick["rect"][0] >= left - 1, tick
            assert tick["rect"][1] <= right + 1, tick
        # A box wide enough for "#3" shows it whole (the id is what gets cut).
        wide = [b for b in found["boxes"] if b["rect"][1] - b["rect"][0] >= 30]
        assert wide
        for box in wide:
            assert box["att"][1] <= box["rect"][1], box
        assert len(found["legend"]) == 4
    even = results["even"]
    assert "token-race" in [code["text"] for code in even["ids"]]
    badges = {b["text"]: b["bg"] for b in even["badges"]}
    boxes = {b["run"]: b["bg"] for b in even["boxes"]}
    assert badges["supported"] == boxes["token-race #1"] == rgb(TONE_CSS["survives"])
    assert badges["falsified"] == boxes["cache-stale #1"] == rgb(TONE_CSS["ruled_out"])
    dominated = results["dominated"]
    assert [t["text"] for t in dominated["ticks"]][-1] == "10m"
    quick = [b for b in dominated["boxes"] if b["run"].startswith(LONG_ID)]
    assert len(quick) == 30
    assert min(b["rect"][1] - b["rect"][0] for b in quick) >= 8  # each short run is visible
    assert any(code["long"] and code["text"] == LONG_ID for code in dominated["ids"])
    assert [c["lines"] for c in dominated["ids"] if c["text"] == SLOW_ID] == [1, 1]


@needs_browser
@pytest.mark.slow
def test_the_browser_checks_would_see_an_error_and_a_request(tmp_path):
    """The control: a page with a script error and an external image is caught by both."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="http://refute.invalid/x.png">'
        "<script>console.error('boom'); missing();</script></body></html>",
        encoding="utf-8",
    )
    _, stderr, netlog = chromium(
        tmp_path, "bad", "--virtual-time-budget=5000", "--dump-dom", bad.as_uri()
    )
    messages = console_messages(stderr)
    assert any("boom" in line for line in messages), stderr[-2000:]
    assert any("Uncaught" in line for line in messages)
    assert page_requests(netlog) == ["http://refute.invalid/x.png"]


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) pixels) of an 8-bit, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8
    assert interlace == 0
    channels = {2: 3, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(
            bytes(line) if channels == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
        )
        previous = line
    return width, height, rows


@needs_browser
@pytest.mark.slow
def test_a_screenshot_at_700px_shows_the_page_and_its_tones(tmp_path):
    report = tmp_path / "report.html"
    report.write_text(render(make_document(), "html"), encoding="utf-8")
    shot = tmp_path / "report.png"
    _, stderr, netlog = chromium(
        tmp_path, "shot", "--window-size=700,900", f"--screenshot={shot}", report.as_uri()
    )
    assert console_messages(stderr) == []
    assert page_requests(netlog) == []
    width, height, rows = read_png(shot)
    assert (width, height) == (700, 900)
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(pixels) > 50  # text, badges, table rules: not a blank page
    for tone in ("survives", "ruled_out"):  # the badges (in the first 900 px) are drawn
        colour = bytes(int(TONE_CSS[tone][i : i + 2], 16) for i in (1, 3, 5))
        assert colour in pixels, tone
