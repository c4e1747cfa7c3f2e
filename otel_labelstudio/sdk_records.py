"""Adapters from OpenTelemetry SDK objects to the pipeline's plain records.

The in-process door: `LabelStudioSpanExporter` / `LabelStudioLogExporter` hand their batches here.
Records must outlive the SDK objects (they are spooled and joined later), so attribute values are
copied out of OTel's `BoundedAttributes` into plain dicts and tuples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from otel_labelstudio.genai_filter import is_genai_event
from otel_labelstudio.model import EventRecord, SpanRecord

__all__ = ["event_record", "plain_attributes", "span_record"]


class _Resource(Protocol):
    @property
    def attributes(self) -> Mapping[str, Any]: ...


class _LogRecord(Protocol):
    timestamp: int | None
    observed_timestamp: int | None
    trace_id: int | None
    span_id: int | None
    body: Any
    attributes: Mapping[str, Any] | None


class _LogRecordEnvelope(Protocol):
    """What `ReadableLogRecord` (SDK ≥ 1.39) and the older `LogData` have in common."""

    @property
    def log_record(self) -> Any: ...

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None: ...


def plain_value(value: Any) -> Any:
    """A copy of an attribute value made of plain dicts, tuples and scalars."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return tuple(plain_value(item) for item in value)
    return value


def plain_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {key: plain_value(value) for key, value in attributes.items()}


def _trace_id_hex(trace_id: int | None) -> str:
    return format(trace_id, "032x") if trace_id else ""


def _span_id_hex(span_id: int | None) -> str:
    return format(span_id, "016x") if span_id else ""


def _scope_name(scope: InstrumentationScope | None) -> str:
    return scope.name if scope is not None else ""


def _ids(context: SpanContext | None) -> tuple[str, str]:
    if context is None:
        return "", ""
    return _trace_id_hex(context.trace_id), _span_id_hex(context.span_id)


def span_record(span: ReadableSpan) -> SpanRecord:
    trace_id, span_id = _ids(span.context)
    _, parent_span_id = _ids(span.parent)
    resource = plain_attributes(span.resource.attributes)
    scope = _scope_name(span.instrumentation_scope)
    events = tuple(
        EventRecord(
            name=event.name,
            time_unix_nano=event.timestamp,
            attributes=plain_attributes(event.attributes),
            trace_id=trace_id,
            span_id=span_id,
            resource=resource,
            scope=scope,
        )
        for event in span.events
    )
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=span.name,
        kind=span.kind.name,
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or 0,
        status_code=span.status.status_code.name,
        status_message=span.status.description or "",
        attributes=plain_attributes(span.attributes),
        events=events,
        resource=resource,
        scope=scope,
    )


def _resource_attributes(record: _LogRecordEnvelope) -> Mapping[str, Any] | None:
    # `ReadableLogRecord` carries the resource itself; `LogData` left it on its SDK LogRecord.
    resource: _Resource | None = getattr(record, "resource", None)
    if resource is None:
        resource = getattr(record.log_record, "resource", None)
    return resource.attributes if resource is not None else None


def event_record(record: _LogRecordEnvelope) -> EventRecord | None:
    """The GenAI event in an SDK log record (`ReadableLogRecord` or `LogData`), else None."""
    log_record: _LogRecord = record.log_record
    attributes = log_record.attributes
    name = getattr(log_record, "event_name", None) or (attributes or {}).get("event.name")
    if not is_genai_event(name, attributes):
        return None
    return EventRecord(
        name=str(name),
        time_unix_nano=log_record.timestamp or log_record.observed_timestamp or 0,
        attributes=plain_attributes(attributes),
        body=plain_value(log_record.body),
        trace_id=_trace_id_hex(log_record.trace_id),
        span_id=_span_id_hex(log_record.span_id),
        resource=plain_attributes(_resource_attributes(record)),
        scope=_scope_name(record.instrumentation_scope),
    )
