"""The entry point: `render` picks a format's renderer; JSON is the document itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from refute.errors import ConfigError
from refute.reports._html import render_html
from refute.reports._junit import render_junit
from refute.reports._markdown import render_markdown
from refute.reports._text import render_text

FORMATS: Final = ("text", "json", "markdown", "junit", "html")


def render(doc: dict[str, Any], fmt: str, *, color: bool = False, width: int = 100) -> str:
    """Render a session document in one of `FORMATS`.

    `color` and `width` only concern the text format. Raises `ConfigError` (field
    "format") for an unknown format.
    """
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "text": lambda d: render_text(d, color=color, width=width),
        "json": render_json,
        "markdown": render_markdown,
        "junit": render_junit,
        "html": render_html,
    }
    renderer = renderers.get(fmt)
    if renderer is None:
        raise ConfigError("format", f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    return renderer(doc)


def render_json(doc: dict[str, Any]) -> str:
    """The document itself, as JSON (what `REPORT_JSON_SCHEMA` describes)."""
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)
