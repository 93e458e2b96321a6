"""The HTML timeline's geometry: where each run's box goes, and the ticks of its time axis.

Pure arithmetic on seconds (no HTML), so it can be tested on its own.

The axis is linear unless that would make short runs unreadable: when the shortest run
would take less than `MIN_SHARE` of the width, every stretch between two run boundaries
(a start or an end) that is longer than `CUT_FACTOR` typical runs is drawn only that long,
half at each end, and the middle is *cut*: left out of the drawing and marked where it was
(a broken axis). One 600 s run beside many 0.2 s runs then leaves the short runs wide
enough to see, and a resumed session's day-long pause does not squeeze both halves into
the edges. Outside the cuts the axis stays linear, so the ticks there are true.

Ticks are round values (1, 2, 5 times a power of ten of milliseconds or seconds, then 1,
2, 5, 10, 20 minutes, 1, 2, 5, 10 hours, 1, 2, 5 times a power of ten of days) with their
unit, at most `TICKS` intervals over the drawn length. Each label takes room on the axis
(`LABEL_CHAR` of the width per character, as measured at a 700 px window): it is centred on
its tick, or starts at it (the first, and the first after a cut) or ends at it (the last,
and the last before a cut), so it stays inside the axis and the labels on either side of a
cut read "8s" and "10m" next to its mark; a tick whose label would touch the one before is
left out, so no label runs into another.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CUT_FACTOR",
    "LABEL_CHAR",
    "MIN_SHARE",
    "STEPS",
    "TICKS",
    "Axis",
    "Cut",
    "Tick",
    "tick_step",
    "tick_values",
    "time_label",
]

#: The shortest run's share of the width below which long stretches are cut.
MIN_SHARE: Final = 0.02
#: A stretch longer than this many typical (median) runs is cut down to that length.
CUT_FACTOR: Final = 10.0
#: At most this many intervals between ticks.
TICKS: Final = 6
#: The share of the axis' width one character of a tick label takes (12 px type on the
#: roughly 600 px wide axis of a 700 px window), with one character of room around it.
LABEL_CHAR: Final = 0.013

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
#: The tick steps, in seconds: round values of each unit, smallest first.
STEPS: Final[tuple[float, ...]] = (
    *(m * 10.0**e for e in (-3, -2, -1, 0) for m in (1, 2, 5)),
    10.0,
    20.0,
    *(m * _MINUTE for m in (1, 2, 5, 10, 20)),
    *(m * _HOUR for m in (1, 2, 5, 10)),
    *(m * 10.0**e * _DAY for e in range(6) for m in (1, 2, 5)),
)


def tick_step(span: float, ticks: int = TICKS) -> float:
    """The smallest step of `STEPS` that covers `span` seconds in at most `ticks` intervals."""
    return next((step for step in STEPS if span / step <= ticks), STEPS[-1])


def tick_values(start: float, end: float, step: float) -> list[float]:
    """The multiples of `step` from `start` to `end` (inclusive), rounded to microseconds
    so that 0.1 * 3 reads 0.3."""
    first = math.ceil(start / step - 1e-9)
    last = math.floor(end / step + 1e-9)
    return [round(n * step, 6) for n in range(first, last + 1)]


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def time_label(seconds: float, step: float) -> str:
    """A tick's label with its unit, as exact as the step: "0", "500ms", "1.5s", "1m20s",
    "1h20m", "2d"."""
    if seconds <= 0:
        return "0"
    if step < 1:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        if seconds < 1:
            return _number(seconds * 1000, max(0, decimals - 3)) + "ms"
        return _number(seconds, decimals) + "s"
    if seconds < _MINUTE:
        return _number(seconds, 0) + "s"
    parts, rest = [], round(seconds)
    for unit, name in ((_DAY, "d"), (_HOUR, "h"), (_MINUTE, "m"), (1.0, "s")):
        count, rest = divmod(rest, int(unit))
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


@dataclass(frozen=True)
class Cut:
    """A stretch of the session left out of the drawing (seconds from the earliest start),
    and the share of the width where it is marked."""

    start: float
    end: float
    at: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Tick:
    seconds: float  # from the earliest start
    share: float  # of the width, 0..1
    label: str
    align: Literal["start", "middle", "end"] = "middle"  # where the label is, from the tick

    @property
    def extent(self) -> tuple[float, float]:
        """The share of the width the label covers, with half a character of room each side."""
        width = LABEL_CHAR * (len(self.label) + 1)
        left = {"start": 0.0, "middle": width / 2, "end": width}[self.align]
        return self.share - left, self.share - left + width


class Axis:
    """The time axis of a set of runs, given as (start, end) epoch seconds."""

    def __init__(self, intervals: Sequence[tuple[float, float]]) -> None:
        if not intervals:
            raise ValueError("an axis needs at least one run")
        self.origin = min(start for start, _ in intervals)
        spans = [(start - self.origin, max(end, start) - self.origin) for start, end in intervals]
        self.span = max(end for _, end in spans)
        self.cuts = self._cuts(spans)
        self.drawn = self.span - sum(cut.seconds for cut in self.cuts)

    def _cuts(self, spans: list[tuple[float, float]]) -> list[Cut]:
        durations = [end - start for start, end in spans if end > start]
        if not durations or min(durations) >= MIN_SHARE * self.span:
            return []
        keep = CUT_FACTOR * statistics.median_low(durations)
        bounds = sorted({t for pair in spans for t in pair})
        stretches = [(a + keep / 2, b - keep / 2) for a, b in itertools.pairwise(bounds)]
        stretches = [(a, b) for a, b in stretches if b > a]
        cuts, removed = [], 0.0
        for a, b in stretches:
            cuts.append(Cut(a, b, (a - removed)))  # `at` in drawn seconds until divided
            removed += b - a
        drawn = self.span - removed
        return [Cut(cut.start, cut.end, cut.at / drawn) for cut in cuts]

    def share(self, seconds_from_origin: float) -> float:
        """Where a moment is drawn, as a share of the width (a moment inside a cut is drawn
        at the cut's mark)."""
        if self.drawn <= 0:
            return 0.0
        drawn = seconds_from_origin
        for cut in self.cuts:
            if seconds_from_origin >= cut.end:
                drawn -= cut.seconds
            elif seconds_from_origin > cut.start:
                drawn -= seconds_from_origin - cut.start
        return min(max(drawn / self.drawn, 0.0), 1.0)

    def box(self, start: float, duration: float) -> tuple[float, float]:
        """(left, width) of a run's box, as shares of the width."""
        left = self.share(start - self.origin)
        right = self.share(start - self.origin + max(duration, 0.0))
        return left, max(right - left, 0.0)

    def ticks(self) -> list[Tick]:
        """Round-valued ticks over the drawn parts, in order, no two labels overlapping: a
        tick whose label would overlap the one before it is left out (or, the first after a
        cut, takes the place of the one before, unless that is the first)."""
        if self.drawn <= 0:
            return [Tick(0.0, 0.0, "0", "start")]
        step = tick_step(self.drawn)
        pieces, start = [], 0.0
        for cut in self.cuts:
            pieces.append((start, cut.start))
            start = cut.end
        pieces.append((start, self.span))
        ticks: list[Tick] = []
        for index, (a, b) in enumerate(pieces):
            for number, value in enumerate(tick_values(a, b, step)):
                tick = self._tick(value, step, after_cut=index > 0 and number == 0)
                if ticks and tick.extent[0] < ticks[-1].extent[1]:
                    if number > 0 or index == 0 or len(ticks) == 1:
                        continue
                    ticks.pop()
                    if tick.extent[0] < ticks[-1].extent[1]:
                        continue
                ticks.append(tick)
        return ticks

    def _tick(self, value: float, step: float, *, after_cut: bool) -> Tick:
        share = self.share(value)
        label = time_label(value, step)
        half = LABEL_CHAR * (len(label) + 1) / 2
        near_cut_before = any(0 <= cut.at - share < half for cut in self.cuts)
        if share < half or after_cut:
            return Tick(value, share, label, "start")
        if share > 1 - half or near_cut_before:
            return Tick(value, share, label, "end")
        return Tick(value, share, label)
