"""Content that lives only in log-record events (GenAI 1.28 "events" mode) travels through the
real SDK log pipeline into our log exporter, meets its span from our span exporter, and becomes
one task in the real Label Studio."""

from __future__ import annotations

from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from otel_labelstudio import LabelStudioLogExporter, LabelStudioSpanExporter

pytestmark = pytest.mark.labelstudio


@pytest.mark.parametrize("event_name_in", ["field", "attribute"])
def test_log_record_events_join_their_span(
    label_studio: Any, unique_project_name: str, event_name_in: str
) -> None:
    settings = {
        "url": label_studio.url,
        "api_key": label_studio.personal_access_token,
        "project_name": unique_project_name,
        "mode": "chat",
    }
    span_exporter = LabelStudioSpanExporter(**settings)
    log_exporter = LabelStudioLogExporter(**settings)
    assert span_exporter.pipeline is log_exporter.pipeline  # one pipeline, so they can meet

    resource = Resource.create({"service.name": "events-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("openai-v2-like")
    logger = logger_provider.get_logger("openai-v2-like")

    def emit(name: str, body: dict[str, Any]) -> None:
        if event_name_in == "field":
            logger.emit(event_name=name, body=body, attributes={"gen_ai.system": "openai"})
        else:  # SDKs older than LogRecord.event_name put it in an attribute
            logger.emit(body=body, attributes={"event.name": name, "gen_ai.system": "openai"})

    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 21,
                "gen_ai.usage.output_tokens": 7,
            }
        )
        emit("gen_ai.system.message", {"content": "You are a weather bot."})
        emit("gen_ai.user.message", {"content": "Weather in Oslo?"})
        emit(
            "gen_ai.choice",
            {"index": 0, "finish_reason": "stop", "message": {"content": "Cold and clear."}},
        )
    # Logs first, as the SDK's schedule usually delivers them (1 s vs 5 s); the span then joins.
    assert logger_provider.force_flush(30_000)
    assert tracer_provider.force_flush(30_000)
    assert span_exporter.force_flush(30_000)

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    (project,) = [p for p in client.projects.list(title=unique_project_name)]
    (task,) = list(client.tasks.list(project=project.id, fields="all"))
    assert task.data["prompt"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Oslo?"},
    ]
    assert task.data["model"] == "gpt-4o-mini-2024-07-18"
    assert (task.data["input_tokens"], task.data["output_tokens"]) == (21, 7)
    assert task.data["service"] == "events-app"
    (prediction,) = task.predictions
    assert prediction.model_version == "gpt-4o-mini-2024-07-18"
    assert prediction.result[0]["value"]["text"] == ["Cold and clear."]

    tracer_provider.shutdown()
    logger_provider.shutdown()
