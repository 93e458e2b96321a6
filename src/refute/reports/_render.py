"""The entry point: `render` picks a format's renderer; JSON is the document itself, and
`REPORT_JSON_SCHEMA` its schema."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from refute.document import document_json_schema
from refute.errors import ConfigError
from refute.reports._common import parse
from refute.reports._html import render_html
from refute.reports._junit import JUNIT_SUPPORTED, JunitSupported, render_junit
from refute.reports._markdown import render_markdown
from refute.reports._text import render_text

__all__ = [
    "FORMATS",
    "JUNIT_SUPPORTED",
    "REPORT_JSON_SCHEMA",
    "JunitSupported",
    "dump_json",
    "finite",
    "render",
    "render_json",
]

FORMATS: Final = ("text", "json", "markdown", "junit", "html")

#: The JSON Schema (draft 2020-12) of the document `render_json` writes, generated from the
#: models of `refute.document`; `refute schema --report` prints it.
REPORT_JSON_SCHEMA: Final[dict[str, Any]] = document_json_schema()


def render(
    doc: Mapping[str, Any],
    fmt: str,
    *,
    color: bool = False,
    width: int = 100,
    verbose: bool = False,
    junit_supported: JunitSupported = "failure",
) -> str:
    """Render a session document in one of `FORMATS`.

    `color`, `width` and `verbose` (list every run and its logs, not only those that need
    attention) only concern the text format, `junit_supported` (one of `JUNIT_SUPPORTED`:
    how a SUPPORTED hypothesis shows) the JUnit one. Raises `ConfigError` (field "format")
    for an unknown format.
    """
    renderers: dict[str, Callable[[Mapping[str, Any]], str]] = {
        "text": lambda d: render_text(d, color=color, width=width, verbose=verbose),
        "json": render_json,
        "markdown": render_markdown,
        "junit": lambda d: render_junit(d, supported=junit_supported),
        "html": render_html,
    }
    renderer = renderers.get(fmt)
    if renderer is None:
        raise ConfigError("format", f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    return renderer(doc)


def render_json(doc: Mapping[str, Any]) -> str:
    """The document itself, as JSON (what `REPORT_JSON_SCHEMA` describes): every key it
    has, in the models' order (so a session renders byte for byte the same from `run` and
    from `show`, whatever order the store read it in), keys the models do not know last.
    A document that is not one is refused like in every other format."""
    template = parse(doc).model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dump_json(_ordered_like(doc, template))


def _ordered_like(value: object, template: object) -> object:
    """`value` with the keys of every object in `template`'s order (its own keys that the
    template lacks last, as given); the values are `value`'s, unchanged."""
    if isinstance(value, Mapping) and isinstance(template, Mapping):
        keys = [key for key in template if key in value]
        keys += [key for key in value if key not in template]
        return {key: _ordered_like(value[key], template.get(key)) for key in keys}
    if isinstance(value, list) and isinstance(template, list) and len(value) == len(template):
        return [_ordered_like(item, like) for item, like in zip(value, template, strict=True)]
    return value


def finite(value: object) -> object:
    """`value` with every NaN and infinity (at any depth) replaced by None: strict JSON
    parsers reject `NaN` and `Infinity`, which `json.dumps` would write."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def dump_json(data: object, *, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259) of `data`: never `NaN` or `Infinity` (see `finite`)."""
    return json.dumps(finite(data), indent=indent, ensure_ascii=False, allow_nan=False)
