"""Reports: one session document rendered as text, JSON, Markdown, JUnit XML or HTML.

Every renderer reads only the plain *session document* (`refute.session/1`, described
field by field in docs/report.md), never live objects, so a stored session renders
exactly like a fresh one. Each renderer validates the document into the models of
`refute.document` once and reads their typed fields; `REPORT_JSON_SCHEMA` is generated
from the same models. Renderers return strings; printing is the front end's job. Text
taken from a document (test output above all) is untrusted: every format escapes it for
its own syntax, and all but JSON drop terminal escape sequences and the control characters
XML 1.0 forbids.

This module only re-exports: the document's vocabulary is `refute.document`'s, reading a
document is in `_common`, each format in its own module, `render` and the schema in
`_render`.
"""

from refute.document import ACTIONS, OUTCOMES, VERDICTS
from refute.document import OUTCOME_KEYS as COUNT_KEYS
from refute.document import SCHEMA as SCHEMA_VERSION
from refute.reports._common import (
    CHECKOUT_NOTE,
    DIFFERENT_NOTE,
    MESSAGE_LIMIT,
    TAIL_LINES,
    UNRELIABLE_NOTE,
    clean_text,
    command_text,
)
from refute.reports._html import render_html
from refute.reports._junit import JUNIT_STREAM_LIMIT, render_junit
from refute.reports._markdown import render_markdown
from refute.reports._render import (
    FORMATS,
    JUNIT_SUPPORTED,
    REPORT_JSON_SCHEMA,
    JunitSupported,
    dump_json,
    finite,
    render,
    render_json,
)
from refute.reports._text import render_text

__all__ = [
    "ACTIONS",
    "CHECKOUT_NOTE",
    "COUNT_KEYS",
    "DIFFERENT_NOTE",
    "FORMATS",
    "JUNIT_STREAM_LIMIT",
    "JUNIT_SUPPORTED",
    "MESSAGE_LIMIT",
    "OUTCOMES",
    "REPORT_JSON_SCHEMA",
    "SCHEMA_VERSION",
    "TAIL_LINES",
    "UNRELIABLE_NOTE",
    "VERDICTS",
    "JunitSupported",
    "clean_text",
    "command_text",
    "dump_json",
    "finite",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_text",
]
