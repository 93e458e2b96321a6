"""Reading a plan file and parsing its YAML (or JSON) safely, remembering every line.

`_read` refuses what is not a small regular file before reading it; `_compose` builds
plain data from the parser's events, refusing anchors, aliases, duplicate keys and tags
outside the core schema, and records the line of each value for error messages. A `.json`
plan is read by `_JsonReader` instead (JSON is not quite YAML: PyYAML refuses the
surrogate-pair escapes `json.dumps` writes for an emoji), with the same refusals and lines.
Validation against the models is `refute.plan`'s job.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from refute.errors import PlanError, one_line
from refute.plan.errors import Lines, Loc, format_loc, show_value

__all__ = [
    "MAX_NESTING",
    "MAX_PLAN_BYTES",
    "parse_json",
    "parse_text",
    "parse_yaml",
    "read_text",
]


try:
    from yaml import CSafeLoader as _SafeLoaderBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoaderBase  # type: ignore[assignment]

#: Plans larger than this are refused before a single byte is parsed.
MAX_PLAN_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists a plan may use (a real plan needs 4).
MAX_NESTING = 32

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)


class _PlanLoader(_SafeLoaderBase):
    """The safe loader, plus JSON's exponent floats (`1e3`, which YAML 1.1 reads as a
    string). `_compose` drives it event by event, so anchors, aliases, duplicate keys and
    tags outside the core schema are refused before anything is built from them."""


_PlanLoader.add_implicit_resolver(
    _CORE + "float",
    re.compile(r"^[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _Container:
    __slots__ = ("data", "key", "loc")

    def __init__(self, data: dict[Any, Any] | list[Any], loc: Loc) -> None:
        self.data = data
        self.loc = loc
        self.key: Any = _NO_KEY


_NO_KEY = object()


def _compose(loader: _PlanLoader, name: str) -> tuple[object, Lines]:
    """Build plain data from the loader's events, recording where each value is."""
    lines = Lines({}, {})

    def refuse(message: str, line: int, loc: Loc = ()) -> PlanError:
        return PlanError(name, format_loc(loc), message, line)

    loader.get_event()  # StreamStartEvent
    if loader.check_event(yaml.StreamEndEvent):
        return None, lines
    loader.get_event()  # DocumentStartEvent
    stack: list[_Container] = []
    root: object = None
    while True:
        event = loader.get_event()
        if event is None:  # pragma: no cover - the parser raises before running out
            raise refuse("unexpected end of the YAML text", 1)
        line = event.start_mark.line + 1 if event.start_mark else 1
        top = stack[-1] if stack else None
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            if not stack:
                break
            continue
        if top is None:
            loc: Loc = ()
        elif isinstance(top.data, list):
            loc = (*top.loc, len(top.data))
        else:
            loc = top.loc if top.key is _NO_KEY else (*top.loc, top.key)
        if isinstance(event, yaml.AliasEvent):
            raise refuse("YAML aliases (*name) are not allowed", line, loc)
        if getattr(event, "anchor", None) is not None:
            raise refuse("YAML anchors (&name) are not allowed", line, loc)
        value: object
        if isinstance(event, yaml.ScalarEvent):
            value = _scalar(loader, event, refuse, line, loc)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
            tag = event.tag
            if tag not in {None, "!", _CORE + kind}:
                raise refuse(f"YAML tag {_short_tag(tag)} is not allowed", line, loc)
            if isinstance(top, _Container) and isinstance(top.data, dict) and top.key is _NO_KEY:
                raise refuse("a mapping key must be a plain value", line, loc)
            if len(stack) >= MAX_NESTING:
                raise refuse(f"nested more than {MAX_NESTING} levels deep", line, loc)
            value = {} if kind == "map" else []
        else:  # pragma: no cover - the parser emits no other event inside a document
            raise refuse(f"unexpected YAML event {type(event).__name__}", line, loc)
        # Place the value: as the root, a list item, a mapping key, or a mapping value.
        if top is None:
            root, here = value, ()
        elif isinstance(top.data, list):
            here = (*top.loc, len(top.data))
            top.data.append(value)
        elif top.key is _NO_KEY:
            here = (*top.loc, value)
            if value in top.data:
                raise refuse(f"duplicate key {show_value(value)}", line, here)
            top.key = value
            lines.keys[here] = line
            continue
        else:
            here = (*top.loc, top.key)
            top.data[top.key] = value
            top.key = _NO_KEY
        lines.values[here] = line
        if isinstance(value, dict | list):
            stack.append(_Container(value, here))
        elif not stack:
            break
    loader.get_event()  # DocumentEndEvent
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.peek_event()
        mark = event.start_mark if event else None
        second = mark.line + 1 if mark else None
        raise PlanError(name, "", "a plan is one YAML document (found a second one)", second)
    return root, lines


def _scalar(
    loader: _PlanLoader,
    event: yaml.ScalarEvent,
    refuse: Callable[[str, int, Loc], PlanError],
    line: int,
    loc: Loc,
) -> object:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    if tag == _CORE + "merge":
        raise refuse("YAML merge keys (<<) are not allowed", line, loc)
    if tag not in _SCALAR_TAGS:
        raise refuse(f"YAML tag {_short_tag(tag)} is not allowed", line, loc)
    node = yaml.ScalarNode(tag, event.value, None, None, event.style)
    try:
        return loader.construct_object(node)
    except Exception:  # the constructors raise ValueError, AttributeError, ...: all bad input
        raise refuse(
            f"cannot read {show_value(event.value)} as {_short_tag(tag)}", line, loc
        ) from None


def _short_tag(tag: str | None) -> str:
    tag = tag or "?"
    return one_line("!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag)


def _read(path: Path, name: str) -> bytes:
    """The file's bytes; refuses directories, FIFOs and devices, and anything > 1 MiB
    before reading it (O_NONBLOCK: opening a FIFO must not wait for a writer)."""

    def too_large(size: object) -> PlanError:
        limit = f"a plan may have at most {MAX_PLAN_BYTES} bytes (1 MiB)"
        return PlanError(name, "", f"is too large ({size} bytes; {limit})")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PlanError(name, "", "file not found") from None
    except PermissionError:
        raise PlanError(name, "", "permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PlanError(name, "", f"cannot open: {getattr(exc, 'strerror', None) or exc}") from None
    data = bytearray()
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise PlanError(name, "", "is a directory, not a plan file")
        if not stat.S_ISREG(info.st_mode):
            raise PlanError(name, "", "is not a regular file")
        if info.st_size > MAX_PLAN_BYTES:
            raise too_large(info.st_size)
        while len(data) <= MAX_PLAN_BYTES:
            chunk = os.read(fd, MAX_PLAN_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise PlanError(name, "", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PLAN_BYTES:  # it grew after fstat
        raise too_large(f"more than {MAX_PLAN_BYTES}")
    return bytes(data)


def read_text(path: Path, name: str) -> str:
    """`_read`'s bytes decoded as UTF-8 (a BOM is dropped); refuses anything else."""
    data = _read(path, name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start]
        raise PlanError(name, "", f"is not UTF-8 text (byte 0x{bad:02x})", line) from None
    return text


def parse_yaml(text: str, name: str) -> tuple[dict[Any, Any], Lines]:
    """The plan text as plain data (a mapping) and the lines of its values, before validation."""
    loader = _PlanLoader(text)
    try:
        data, lines = _compose(loader, name)
    except PlanError:
        raise
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = exc.problem or exc.context or "malformed"
        raise PlanError(name, "", f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise PlanError(name, "", f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return _mapping(data, name), lines


def _mapping(data: object, name: str) -> dict[Any, Any]:
    if data is None:
        raise PlanError(name, "", "the plan is empty")
    if not isinstance(data, dict):
        raise PlanError(
            name, "", f"the top level must be a mapping (key: value), got {show_value(data)}", 1
        )
    return data


def parse_text(text: str, name: str) -> tuple[dict[Any, Any], Lines]:
    """`parse_json` for a name ending in `.json`, else `parse_yaml`."""
    if name.casefold().endswith(".json"):
        return parse_json(text, name)
    return parse_yaml(text, name)


def parse_json(text: str, name: str) -> tuple[dict[Any, Any], Lines]:
    """The plan text, read as JSON (RFC 8259), as plain data and the lines of its values.

    Refuses what the YAML reader refuses (duplicate keys, nesting past MAX_NESTING) and
    what JSON itself does not allow or would not survive the trip to a test's argv or the
    store: NaN and Infinity, numbers out of range, lone surrogates (`"\\ud800"`).
    """
    if not text.strip():
        raise PlanError(name, "", "the plan is empty")
    reader = _JsonReader(text, name)
    data, end = reader.value(0, (), 0)
    end = reader.skip(end)
    if end < len(text):
        raise reader.fail("invalid JSON: extra text after the plan", end)
    return _mapping(data, name), reader.lines


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Longer integers are no plan's (and Python refuses to read past 4300 digits).
_MAX_DIGITS = 100
_STRING = json.JSONDecoder()  # strict: no control characters inside strings
_WORDS: tuple[tuple[str, object], ...] = (("true", True), ("false", False), ("null", None))


class _JsonReader:
    """A recursive-descent JSON reader (bounded by MAX_NESTING) that records lines."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.lines = Lines({}, {})

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def fail(self, message: str, pos: int, loc: Loc = ()) -> PlanError:
        return PlanError(self.name, format_loc(loc), message, self.line(pos))

    def skip(self, pos: int) -> int:
        match = _JSON_SPACE.match(self.text, pos)
        return match.end() if match else pos

    def value(self, pos: int, loc: Loc, depth: int) -> tuple[object, int]:
        pos = self.skip(pos)
        self.lines.values[loc] = self.line(pos)
        text, char = self.text, self.text[pos : pos + 1]
        if char in ("{", "["):
            if depth >= MAX_NESTING:
                raise self.fail(f"nested more than {MAX_NESTING} levels deep", pos, loc)
            if char == "{":
                return self.mapping(pos + 1, loc, depth + 1)
            return self.sequence(pos + 1, loc, depth + 1)
        if char == '"':
            return self.string(pos, loc)
        for word, constant in _WORDS:
            if text.startswith(word, pos):
                return constant, pos + len(word)
        match = _JSON_NUMBER.match(text, pos)
        if match:
            return self.number(match, loc), match.end()
        if text.startswith(("NaN", "Infinity", "-Infinity"), pos):
            raise self.fail("invalid JSON: NaN and Infinity are not numbers in JSON", pos, loc)
        problem = "expected a value" if char else "unexpected end of the text"
        raise self.fail(f"invalid JSON: {problem}", pos, loc)

    def number(self, match: re.Match[str], loc: Loc) -> int | float:
        integer, fraction, exponent = match.groups()
        if len(integer.lstrip("-")) > _MAX_DIGITS:
            raise self.fail(f"a number of more than {_MAX_DIGITS} digits", match.start(), loc)
        if fraction is None and exponent is None:
            return int(integer)
        number = float(match.group())
        if not math.isfinite(number):
            raise self.fail(
                f"the number {show_value(match.group())} is out of range", match.start(), loc
            )
        return number

    def string(self, pos: int, loc: Loc) -> tuple[str, int]:
        try:
            value, end = _STRING.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise PlanError(
                self.name, format_loc(loc), f"invalid JSON: {exc.msg}", exc.lineno
            ) from None
        if not isinstance(value, str):  # pragma: no cover - called at a '"' only
            raise self.fail("invalid JSON: expected a string", pos, loc)
        if _SURROGATE.search(value):
            raise self.fail(
                "invalid JSON: a lone surrogate (a \\ud800-\\udfff escape not in a pair)",
                pos,
                loc,
            )
        return value, end

    def expect(self, pos: int, chars: str, loc: Loc) -> tuple[str, int]:
        """The next non-space character, which must be one of `chars`, and what follows."""
        pos = self.skip(pos)
        char = self.text[pos : pos + 1]
        if not char or char not in chars:
            wanted = " or ".join(repr(c) for c in chars)
            found = repr(char) if char else "the end of the text"
            raise self.fail(f"invalid JSON: expected {wanted}, found {found}", pos, loc)
        return char, pos + 1

    def mapping(self, pos: int, loc: Loc, depth: int) -> tuple[dict[str, object], int]:
        data: dict[str, object] = {}
        pos = self.skip(pos)
        if self.text.startswith("}", pos):
            return data, pos + 1
        while True:
            _, pos = self.expect(pos, '"', loc)
            key, after = self.string(pos - 1, loc)
            here = (*loc, key)
            if key in data:
                raise self.fail(f"duplicate key {show_value(key)}", pos, here)
            self.lines.keys[here] = self.line(pos)
            _, pos = self.expect(after, ":", here)
            data[key], pos = self.value(pos, here, depth)
            char, pos = self.expect(pos, ",}", loc)
            if char == "}":
                return data, pos

    def sequence(self, pos: int, loc: Loc, depth: int) -> tuple[list[object], int]:
        items: list[object] = []
        pos = self.skip(pos)
        if self.text.startswith("]", pos):
            return items, pos + 1
        while True:
            item, pos = self.value(pos, (*loc, len(items)), depth)
            items.append(item)
            char, pos = self.expect(pos, ",]", loc)
            if char == "]":
                return items, pos
