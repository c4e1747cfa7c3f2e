"""`serve` end to end with the OpenTelemetry Python SDK's own OTLP exporters (gRPC and HTTP,
traces and logs), log events that arrive before and after their span, and `replay`, all into
the real Label Studio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from otel_labelstudio.config import Settings
from otel_labelstudio.receiver.service import Service

pytestmark = pytest.mark.labelstudio

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "otlp"


@pytest.fixture
def service_factory(label_studio: Any) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def make(project_name: str, **settings: Any) -> Service:
        values = {
            "url": label_studio.url,
            "api_key": label_studio.personal_access_token,
            "project_name": project_name,
            "mode": "chat",
            "grpc_endpoint": "127.0.0.1:0",
            "http_endpoint": "127.0.0.1:0",
            "join_window_s": 1.0,
            "schedule_delay_s": 0.2,
            **settings,
        }
        service = Service(Settings.load(values, environ={}))
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop(10.0)


def tasks_of(label_studio: Any, title: str) -> list[Any]:
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    projects = [p for p in client.projects.list(title=title) if p.title == title]
    assert len(projects) == 1, f"one project titled {title!r} expected"
    return sorted(client.tasks.list(project=projects[0].id, fields="all"), key=lambda t: t.id)


def providers(protocol: str, service: Service, name: str) -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": name})
    if protocol == "grpc":
        endpoint = f"127.0.0.1:{service.grpc.port}"
        spans: Any = GrpcSpans(endpoint=endpoint, insecure=True)
        logs: Any = GrpcLogs(endpoint=endpoint, insecure=True)
    else:
        base = f"http://127.0.0.1:{service.http.port}"
        spans = HttpSpans(endpoint=f"{base}/v1/traces")
        logs = HttpLogs(endpoint=f"{base}/v1/logs")
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return tracer_provider, logger_provider


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_otlp_exporters_spans_and_log_events_in_either_order(
    label_studio: Any,
    service_factory: Callable[..., Service],
    unique_project_name: str,
    protocol: str,
) -> None:
    service = service_factory(unique_project_name)
    tracer_provider, logger_provider = providers(protocol, service, "otlp-app")
    tracer = tracer_provider.get_tracer("openai-v2-like")
    logger = logger_provider.get_logger("openai-v2-like")

    # 1. content on the span itself (GenAI >= 1.37), among ordinary spans
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as http_span:
        http_span.set_attribute("http.route", "/orders")
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "Hello?"}]}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "Hi!"}]}]
                    ),
                }
            )
    # 2. content only in log events (GenAI 1.28), sent BEFORE the span is exported
    span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT)
    span.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        }
    )
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False):
        logger.emit(event_name="gen_ai.user.message", body={"content": "Events first?"})
        logger.emit(
            event_name="gen_ai.choice",
            body={"index": 0, "finish_reason": "stop", "message": {"content": "Yes."}},
        )
    span.end()
    # 3. the span first, its events AFTER (older SDK: the name in the `event.name` attribute)
    late = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT)
    late.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        }
    )
    late.end()
    with trace.use_span(late, end_on_exit=False):
        logger.emit(
            body={"content": "Span first?"}, attributes={"event.name": "gen_ai.user.message"}
        )
        logger.emit(
            body={"index": 0, "finish_reason": "stop", "message": {"content": "Also fine."}},
            attributes={"event.name": "gen_ai.choice"},
        )

    assert service.pipeline.force_flush(60)
    tasks = tasks_of(label_studio, unique_project_name)
    assert [(t.data["prompt"], t.predictions[0].result[0]["value"]["text"][0]) for t in tasks] == [
        ([{"role": "user", "content": "Hello?"}], "Hi!"),
        ([{"role": "user", "content": "Events first?"}], "Yes."),
        ([{"role": "user", "content": "Span first?"}], "Also fine."),
    ]
    assert {t.data["service"] for t in tasks} == {"otlp-app"}
    stats = service.pipeline.stats()
    assert stats["delivered"] == 3
    tracer_provider.shutdown()
    logger_provider.shutdown()


def test_replay_dry_run_and_for_real(
    label_studio: Any, unique_project_name: str, tmp_path: Path
) -> None:
    cli = Path(sys.executable).with_name("otel-labelstudio")
    files = [str(SAMPLES / "chat.traces.pb"), str(SAMPLES / "chat.logs.pb")]
    env = {
        "PATH": str(Path(sys.executable).parent),
        "OTEL_LABELSTUDIO_SPOOL_DIR": os.environ["OTEL_LABELSTUDIO_SPOOL_DIR"],
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.personal_access_token,
        "LABEL_STUDIO_PROJECT_NAME": unique_project_name,
        "LABEL_STUDIO_MODE": "chat",
    }
    dry = subprocess.run(
        [str(cli), "replay", "--dry-run", *files],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    previews = [json.loads(line) for line in dry.stdout.splitlines()]
    assert previews and all(p["project"]["title"] == unique_project_name for p in previews)
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    assert not [p for p in client.projects.list(title=unique_project_name)]  # nothing sent

    real = subprocess.run(
        [str(cli), "replay", *files],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert real.returncode == 0, real.stderr[-2000:]
    tasks = tasks_of(label_studio, unique_project_name)
    assert [t.data["prompt"] for t in tasks] == [p["data"]["prompt"] for p in previews]
    assert [t.predictions[0].result[0]["value"]["text"] for t in tasks] == [
        p["predictions"][0]["result"][0]["value"]["text"] for p in previews
    ]
