"""Laying out the text format within a terminal's width: prose, commands and table columns.

Nothing may be lost at 80 columns (or 60): prose wraps at word boundaries with a hanging
indent, a command wraps at shell word boundaries with a `\\` continuation (so the lines
still paste into a shell as one command), and the table's columns are sized here rather
than by rich, so that an outcome count such as "1/6 timeout" is never split across lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

__all__ = ["Columns", "Writer", "column_widths", "command_lines", "pack_parts", "shell_words"]

#: Spaces between two table columns: a cell's right padding and the blank divider of
#: `box.SIMPLE_HEAD` (cells have no left padding: `_text` sets `padding=(0, 1, 0, 0)`).
COLUMN_GAP = 2
#: The indent of a command's continuation lines.
CONTINUATION = "    "


class Writer:
    """Prints lines to a rich console, none of them wider than `width` columns."""

    def __init__(self, console: Console, width: int) -> None:
        self.console = console
        self.width = width

    def blank(self) -> None:
        self.console.print()

    def say(
        self, *parts: str | tuple[str, str], style: str = "", indent: int = 0, hang: int = 2
    ) -> None:
        """One paragraph of prose: wrapped at word boundaries, later lines indented by
        `hang` more than the first (a word longer than a line is folded). Runs of
        whitespace (newlines, tabs) in `parts` read as one space: the width is ours."""
        pieces = [
            (_spaced(part), "") if isinstance(part, str) else (_spaced(part[0]), part[1])
            for part in parts
        ]
        self.prose(Text.assemble(*pieces, style=style), indent=indent, hang=hang)

    def prose(self, text: Text, *, indent: int = 0, hang: int = 2) -> None:
        """`text` (styled, on one line) wrapped as `say` does: the first line gets the
        whole width after `indent`, the others `hang` columns less."""
        first = max(self.width - indent, 1)
        rest = max(first - hang, 1)
        lines = list(text.wrap(self.console, first, overflow="fold"))
        if len(lines) > 1 and rest != first:
            tail = text.divide([len(lines[0].plain)])[1]
            tail = tail[len(tail.plain) - len(tail.plain.lstrip()) :]
            lines = lines[:1] + list(tail.wrap(self.console, rest, overflow="fold"))
        for number, line in enumerate(lines):
            line.rstrip()
            margin = indent if number == 0 else indent + hang
            self.console.print(Text(" " * margin) + line, soft_wrap=True)

    def command(self, command: str, *, indent: int = 2, style: str = "bold") -> None:
        """`$ command`, wrapped (when it does not fit) at unquoted spaces with a trailing
        `\\`, so that the lines, pasted into a shell, are still the one command."""
        for line in command_lines(command, self.width, indent):
            self.console.print(Text(line, style=style), soft_wrap=True)


def _spaced(text: str) -> str:
    """`text` with each run of whitespace one space (an edge keeps one, to join parts)."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


def shell_words(command: str) -> list[tuple[str, bool]]:
    """The words of a shell command line as written (quotes kept), split at unquoted
    whitespace; each with whether a line may be continued (`\\` newline) after each of
    its characters, which is not so inside single quotes (there the backslash is literal)."""
    words: list[tuple[str, bool]] = []
    current: list[str] = []
    breakable = True
    quote = ""
    escaped = False
    for char in command:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if current:
                words.append(("".join(current), breakable))
                current, breakable = [], True
            continue
        if quote == "'":
            breakable = False
        current.append(char)
    if current:
        words.append(("".join(current), breakable))
    return words


def command_lines(command: str, width: int, indent: int = 0) -> list[str]:
    """`$ command` in lines of at most `width` columns, the first indented by `indent`
    (see `Writer.command`). A word longer than a line is folded with a `\\` too, and goes
    on at the start of the next line (an indent there would split the word), except
    inside single quotes, where a backslash would be part of the word."""
    width = max(width, indent + len(CONTINUATION) + 4)
    lines: list[str] = []
    line = " " * indent + "$"
    fresh = True  # no word on this line yet
    last_breakable = True
    for word, breakable in shell_words(command):
        if not fresh and cell_len(line) + 1 + cell_len(word) + len(" \\") > width:
            # A folded remainder of the last word must leave room for the " \\".
            line = _fold(line, width - len(" \\"), last_breakable, lines)
            lines.append(line + " \\")
            line, fresh = " " * indent + CONTINUATION[:-1], True
        line, fresh = f"{line} {word}", False
        line = _fold(line, width, breakable, lines)
        last_breakable = breakable
    lines.append(line)
    return lines


def _fold(line: str, width: int, breakable: bool, lines: list[str]) -> str:
    """Append to `lines` the full pieces of `line` folded at `width` (with a `\\` where a
    line may be continued); return what is left, at most `width` columns."""
    while cell_len(line) > width:
        cut = _cut(line, width - (1 if breakable else 0))
        if breakable and cut > 1 and line[cut - 1] == "\\":  # keep an escape and its char
            cut -= 1
        while cut > 1 and line[cut - 1].isspace():  # trailing spaces would be stripped
            cut -= 1
        lines.append(line[:cut] + ("\\" if breakable else ""))
        line = line[cut:]
    return line


def _cut(text: str, cells: int) -> int:
    """How many characters of `text` fit in `cells` columns (at least one)."""
    used = 0
    for index, char in enumerate(text):
        used += cell_len(char)
        if used > cells:
            return max(index, 1)
    return len(text)


def pack_parts(parts: Sequence[str], width: int) -> list[list[int]]:
    """The indexes of `parts` per line when they are joined with ", " on lines of at most
    `width` columns, breaking only between parts (each ends its line with its comma)."""
    lines: list[list[int]] = []
    used = 0
    for index, part in enumerate(parts):
        need = len(part) + (1 if index < len(parts) - 1 else 0)  # its comma
        if lines and used + 1 + need <= width:
            lines[-1].append(index)
            used += 1 + need
        else:
            lines.append([index])
            used = need
    return lines


@dataclass(frozen=True)
class Columns:
    """The content widths of the verdict table's columns."""

    rank: int
    hypothesis: int
    verdict: int
    confidence: int
    time: int
    runs: int


def column_widths(
    width: int,
    *,
    rank: int,
    hypothesis: tuple[int, int],
    verdict: tuple[int, int],
    time: int,
    runs: tuple[int, int],
) -> Columns | None:
    """Column widths that fit `width`: the fixed columns as they are, each flexible one
    (given as (narrowest, natural)) at its narrowest, and the columns left over shared
    out: to the verdicts first, then the ids whole if that leaves the runs column room
    for another count or so (`_ROOM`), else one at a time to whichever of the two is
    furthest below its natural width.

    The narrowest runs column holds its longest single count, the narrowest verdict column
    its longest word: what must never be split. Ids fold (rich `overflow="fold"`). None
    when even the narrowest columns do not fit (then `_text` lists the rows as lines)."""
    confidence = len("Conf.")
    fixed = rank + confidence + time + COLUMN_GAP * 5
    spare = width - fixed - hypothesis[0] - verdict[0] - runs[0]
    if spare < 0:
        return None
    verdict_width = verdict[0] + min(max(spare, 0), verdict[1] - verdict[0])
    spare -= verdict_width - verdict[0]
    sizes = [hypothesis[0], runs[0]]
    naturals = [hypothesis[1], runs[1]]
    id_deficit, runs_deficit = hypothesis[1] - hypothesis[0], runs[1] - runs[0]
    if spare >= id_deficit + min(runs_deficit, _ROOM):
        sizes = [hypothesis[1], runs[0] + min(spare - id_deficit, runs_deficit)]
        spare = 0
    while spare > 0:
        deficits = [natural - size for size, natural in zip(sizes, naturals, strict=True)]
        most = max(deficits)
        if most <= 0:
            break
        sizes[deficits.index(most)] += 1
        spare -= 1
    return Columns(rank, sizes[0], verdict_width, confidence, time, sizes[1])


#: How much wider than its narrowest the runs column must stay for the ids to be given
#: their whole width first (about one more count on a line).
_ROOM = 12
