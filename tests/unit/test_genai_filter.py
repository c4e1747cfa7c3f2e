from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_labelstudio.genai_filter import is_genai_event, is_genai_record, is_genai_span
from otel_labelstudio.model import EventRecord, SpanRecord


@pytest.fixture
def finished_span() -> Iterator[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def finish(attributes: Mapping[str, Any], event_names: tuple[str, ...] = ()) -> ReadableSpan:
        exporter.clear()
        with tracer.start_as_current_span("span", attributes=dict(attributes)) as span:
            for name in event_names:
                span.add_event(name, {"k": "v"})
        (readable,) = exporter.get_finished_spans()
        return readable

    yield finish
    provider.shutdown()


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.operation.name": "chat"},
        {"http.method": "POST", "gen_ai.request.model": "gpt-4o"},
        {"llm.request.type": "chat"},
        {"llm.model_name": "gpt-4o"},
        {"openinference.span.kind": "LLM"},
        {"ai.model.id": "gpt-4o"},
        {"ai.prompt.messages": "[]"},
        {"ai.prompt": "{}"},
    ],
)
def test_genai_attribute_keys_make_a_genai_span(finished_span: Any, attributes: Any) -> None:
    assert is_genai_span(finished_span(attributes))


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"http.method": "GET", "http.route": "/chat"},
        {"db.system": "postgresql", "db.statement": "select 'gen_ai.prompt'"},
        {"genai.thing": 1, "ai.response.text": "x", "openinference.other": "y"},
        {"llm": "not a prefix", "gen_ai": "nor this"},
    ],
)
def test_other_spans_are_not_genai(finished_span: Any, attributes: Any) -> None:
    assert not is_genai_span(finished_span(attributes))


def test_a_genai_span_event_makes_a_genai_span(finished_span: Any) -> None:
    assert is_genai_span(finished_span({"http.method": "POST"}, ("gen_ai.content.prompt",)))
    assert not is_genai_span(finished_span({"http.method": "POST"}, ("exception",)))


def _record(attributes: Mapping[str, Any], event_names: tuple[str, ...] = ()) -> SpanRecord:
    return SpanRecord(
        trace_id="0" * 31 + "1",
        span_id="0" * 15 + "1",
        name="span",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=attributes,
        events=tuple(
            EventRecord(name=name, time_unix_nano=1, attributes={}) for name in event_names
        ),
    )


def test_records_are_filtered_the_same_way() -> None:
    assert is_genai_record(_record({"gen_ai.system": "openai"}))
    assert is_genai_record(_record({"openinference.span.kind": "CHAIN"}))
    assert is_genai_record(_record({}, ("gen_ai.choice",)))
    assert not is_genai_record(_record({"http.method": "GET"}, ("exception",)))


def test_log_events_are_genai_by_event_name_or_event_name_attribute() -> None:
    assert is_genai_event("gen_ai.user.message", {})
    assert is_genai_event(None, {"event.name": "gen_ai.choice"})
    assert is_genai_event("", {"event.name": "gen_ai.client.inference.operation.details"})
    assert not is_genai_event(None, None)
    assert not is_genai_event(None, {"gen_ai.system": "openai"})
    assert not is_genai_event("http.request", {"event.name": "gen_ai.choice"})
    assert not is_genai_event(None, {"event.name": 3})
