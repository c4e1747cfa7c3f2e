"""Plain data that flows through the pipeline.

Adapters turn SDK objects and OTLP messages into `SpanRecord` / `EventRecord`; conventions turn
those into a convention-neutral `Interaction`. Nothing here knows where the data came from or
where it goes.
Attribute values stay as OpenTelemetry gives them: str, bool, int, float, tuples of those, and
(for AnyValue maps in log records) nested dicts and lists.

Every value here is treated as immutable once made: a stage that changes one makes a new one
(`dataclasses.replace`), and unchanged parts are shared between the old and the new. They are
not `frozen` dataclasses only because a frozen `__init__` sets each field through
`object.__setattr__`: ~0.2 µs a field, ~5 µs per interaction over its records, Interaction,
messages and task, measured in `serve` (tests/bench/bench_serve_stages.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EventRecord",
    "Interaction",
    "Message",
    "SpanRecord",
    "Task",
    "span_key",
]

Attributes = Mapping[str, Any]


@dataclass(slots=True)
class EventRecord:
    """A GenAI event: a span event, or a log record (which may name its span by trace/span id).

    `body` is the log record body (None for span events). `trace_id` / `span_id` are lowercase hex,
    or "" when the producer did not set them.
    """

    name: str
    time_unix_nano: int
    attributes: Attributes
    body: Any = None
    trace_id: str = ""
    span_id: str = ""
    resource: Attributes = field(default_factory=dict)
    scope: str = ""


@dataclass(slots=True)
class SpanRecord:
    """One finished span. Ids are lowercase hex (32 and 16 characters)."""

    trace_id: str
    span_id: str
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Attributes
    parent_span_id: str = ""
    kind: str = "INTERNAL"
    status_code: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str = ""
    events: tuple[EventRecord, ...] = ()
    resource: Attributes = field(default_factory=dict)
    scope: str = ""

    @property
    def key(self) -> str:
        return span_key(self.trace_id, self.span_id)


def span_key(trace_id: str, span_id: str) -> str:
    """The identity of an interaction everywhere: ledger, dedupe, task data."""
    return f"{trace_id}:{span_id}"


@dataclass(slots=True)
class Message:
    """One chat message. `content` is its text (text parts joined); `parts` keeps the non-text parts
    (tool calls, tool call responses, media references) as plain dicts with a "type" key."""

    role: str
    content: str = ""
    parts: tuple[Mapping[str, Any], ...] = ()
    name: str | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class Interaction:
    """One LLM call, whatever convention described it."""

    trace_id: str
    span_id: str
    convention: str
    input: tuple[Message, ...] = ()
    output: tuple[Message, ...] = ()  # one per choice
    system_instructions: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    model: str | None = None  # response model, else request model
    request_model: str | None = None
    provider: str | None = None
    operation: str | None = None
    service: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    error: str | None = None
    conversation_id: str | None = None
    response_id: str | None = None
    truncated: bool = False  # some content was cut (e.g. OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    resource: Attributes = field(default_factory=dict)
    metadata: Attributes = field(default_factory=dict)

    @property
    def key(self) -> str:
        return span_key(self.trace_id, self.span_id)

    @property
    def latency_ms(self) -> float | None:
        if self.end_time_unix_nano <= 0 or self.start_time_unix_nano <= 0:
            return None
        return round((self.end_time_unix_nano - self.start_time_unix_nano) / 1e6, 3)

    @property
    def has_content(self) -> bool:
        return bool(self.input or self.output or self.system_instructions)


@dataclass(slots=True)
class Task:
    """A Label Studio task ready to import into `project_id`, keyed by its interaction's span key.

    `payload` is exactly what goes into the import request:
    `{"data": {...}, "predictions": [{"model_version": ..., "result": [...]}]}`.
    """

    key: str
    project_id: int
    payload: Mapping[str, Any]
