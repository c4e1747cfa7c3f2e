from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.sdk_records import event_record, span_record

RESOURCE = Resource.create({"service.name": "support-bot", "deployment.environment": "test"})


def _providers() -> tuple[
    TracerProvider, InMemorySpanExporter, LoggerProvider, InMemoryLogRecordExporter
]:
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    return tracer_provider, span_exporter, logger_provider, log_exporter


def test_span_record_copies_a_real_span() -> None:
    tracer_provider, exporter, _, _ = _providers()
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with (
        tracer.start_as_current_span("workflow") as parent,
        tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": 12,
            },
        ) as span,
    ):
        span.add_event(
            "gen_ai.content.prompt",
            {"gen_ai.prompt": '[{"role": "user", "content": "Hi"}]'},
            timestamp=1_700_000_000_000_000_000,
        )
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
    child, _ = exporter.get_finished_spans()

    record = span_record(child)

    context = child.context
    assert context is not None
    trace_id = format(context.trace_id, "032x")
    span_id = format(context.span_id, "016x")
    resource = dict(RESOURCE.attributes)
    assert record == SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=format(parent.get_span_context().span_id, "016x"),
        name="chat gpt-4o",
        kind="CLIENT",
        start_time_unix_nano=child.start_time or 0,
        end_time_unix_nano=child.end_time or 0,
        status_code="ERROR",
        status_message="rate limited",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 12,
        },
        events=(
            EventRecord(
                name="gen_ai.content.prompt",
                time_unix_nano=1_700_000_000_000_000_000,
                attributes={"gen_ai.prompt": '[{"role": "user", "content": "Hi"}]'},
                trace_id=trace_id,
                span_id=span_id,
                resource=resource,
                scope="opentelemetry.instrumentation.openai_v2",
            ),
        ),
        resource=resource,
        scope="opentelemetry.instrumentation.openai_v2",
    )
    assert len(record.trace_id) == 32 and record.trace_id == record.trace_id.lower()
    assert type(record.attributes) is dict


def test_root_span_has_no_parent_and_plain_attribute_values() -> None:
    tracer_provider, exporter, _, _ = _providers()
    with tracer_provider.get_tracer("t").start_as_current_span("root"):
        pass
    (root,) = exporter.get_finished_spans()
    record = span_record(root)
    assert record.parent_span_id == ""
    assert record.kind == "INTERNAL"
    assert record.status_code == "UNSET"
    assert record.status_message == ""


def test_event_record_from_a_log_record_with_event_name() -> None:
    tracer_provider, _, logger_provider, exporter = _providers()
    logger = logger_provider.get_logger("opentelemetry.instrumentation.openai_v2")
    with tracer_provider.get_tracer("t").start_as_current_span("chat") as span:
        logger.emit(
            event_name="gen_ai.client.inference.operation.details",
            attributes={
                "gen_ai.input.messages": [
                    {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
                ],
                "gen_ai.operation.name": "chat",
            },
        )
    (readable,) = exporter.get_finished_logs()

    record = event_record(readable)

    context = span.get_span_context()
    assert record == EventRecord(
        name="gen_ai.client.inference.operation.details",
        time_unix_nano=readable.log_record.observed_timestamp or 0,
        attributes={
            "gen_ai.input.messages": (
                {"role": "user", "parts": ({"type": "text", "content": "Hi"},)},
            ),
            "gen_ai.operation.name": "chat",
        },
        body=None,
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        resource=dict(RESOURCE.attributes),
        scope="opentelemetry.instrumentation.openai_v2",
    )
    message = record.attributes["gen_ai.input.messages"][0]
    assert type(message) is dict and type(message["parts"][0]) is dict


def test_event_record_from_an_older_event_name_attribute_with_a_body() -> None:
    _, _, logger_provider, exporter = _providers()
    logger = logger_provider.get_logger("opentelemetry.instrumentation.openai_v2")
    logger.emit(
        timestamp=1_700_000_000_000_000_123,
        attributes={"event.name": "gen_ai.choice", "gen_ai.system": "openai"},
        body={
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            },
        },
    )
    (readable,) = exporter.get_finished_logs()

    record = event_record(readable)

    assert record is not None
    assert record.name == "gen_ai.choice"
    assert record.time_unix_nano == 1_700_000_000_000_000_123
    assert record.trace_id == "" and record.span_id == ""
    assert record.body == {
        "index": 0,
        "finish_reason": "tool_calls",
        "message": {
            "tool_calls": (
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
            )
        },
    }


def test_non_genai_log_records_are_skipped() -> None:
    _, _, logger_provider, exporter = _providers()
    logger = logger_provider.get_logger("app")
    logger.emit(body="user logged in", attributes={"user.id": "u1"})
    logger.emit(event_name="browser.click", body={"x": 1})
    assert [event_record(readable) for readable in exporter.get_finished_logs()] == [None, None]


@dataclass
class _OldLogRecord:
    """The shape of an SDK LogRecord before 1.39: resource on the record, no event_name."""

    timestamp: int | None
    observed_timestamp: int | None
    trace_id: int | None
    span_id: int | None
    body: Any
    attributes: dict[str, Any]
    resource: Resource


@dataclass
class _LogData:
    log_record: _OldLogRecord
    instrumentation_scope: InstrumentationScope


def test_event_record_from_the_older_log_data_shape() -> None:
    log_data = _LogData(
        log_record=_OldLogRecord(
            timestamp=None,
            observed_timestamp=42,
            trace_id=0xABC,
            span_id=0,
            body={"content": "Hi"},
            attributes={"event.name": "gen_ai.user.message"},
            resource=RESOURCE,
        ),
        instrumentation_scope=InstrumentationScope("legacy"),
    )

    assert event_record(log_data) == EventRecord(
        name="gen_ai.user.message",
        time_unix_nano=42,
        attributes={"event.name": "gen_ai.user.message"},
        body={"content": "Hi"},
        trace_id="00000000000000000000000000000abc",
        span_id="",
        resource=dict(RESOURCE.attributes),
        scope="legacy",
    )
