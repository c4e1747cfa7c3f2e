"""Stage 1: is this span or log record about a GenAI call?

Every span the application produces meets this test first, and most of them are not GenAI (HTTP,
database, framework spans). So it only looks at attribute keys and event names with a prefix
scan: it never reads attribute values, never parses JSON, and allocates nothing per key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from otel_labelstudio.model import SpanRecord

__all__ = ["is_genai_event", "is_genai_record", "is_genai_span"]

# GenAI semconv, OpenLLMetry (`llm.`) and OpenInference (`llm.`), Vercel AI SDK (`ai.model*`,
# `ai.prompt*`). `str.startswith` with a tuple does the whole scan for a key in C.
_GENAI_KEY_PREFIXES = ("gen_ai.", "llm.", "ai.model", "ai.prompt")
# OpenInference marks every span it makes, LLM or not; later stages decide what to keep.
_GENAI_KEYS = frozenset({"openinference.span.kind"})
_GENAI_EVENT_PREFIX = "gen_ai."


def _has_genai_key(keys: Iterable[str]) -> bool:
    # A plain loop, not any(<generator>): this runs for every attribute of every span.
    for key in keys:  # noqa: SIM110
        if key.startswith(_GENAI_KEY_PREFIXES) or key in _GENAI_KEYS:
            return True
    return False


def is_genai_span(span: ReadableSpan) -> bool:
    """True when an SDK span carries GenAI attributes or GenAI span events."""
    attributes = span.attributes
    if attributes and _has_genai_key(attributes):
        return True
    return any(event.name.startswith(_GENAI_EVENT_PREFIX) for event in span.events)


def is_genai_record(span: SpanRecord) -> bool:
    """`is_genai_span` for a `SpanRecord` (the OTLP receiver's door)."""
    if _has_genai_key(span.attributes):
        return True
    return any(event.name.startswith(_GENAI_EVENT_PREFIX) for event in span.events)


def is_genai_event(name: str | None, attributes: Mapping[str, Any] | None) -> bool:
    """True for a GenAI log record event.

    `name` is `LogRecord.event_name`; producers older than the field put the name in the
    `event.name` attribute instead.
    """
    if not name and attributes:
        name = attributes.get("event.name")
    return isinstance(name, str) and name.startswith(_GENAI_EVENT_PREFIX)
