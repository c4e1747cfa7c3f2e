"""What the gRPC and HTTP receiver tests share: a scripted sink and real SDK telemetry."""

from __future__ import annotations

import threading

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_labelstudio.receiver.otlp import TracesAsSent
from otel_labelstudio.receiver.sink import Accepted

TOKEN = "s3cret-token"
RESOURCE = Resource.create({"service.name": "support-bot"})


class ScriptedSink:
    """Records what it is given and answers from a script (default: accept everything).
    `hold` makes it wait inside `accept_*` until released, to test shutdown with work in flight."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.answers: list[Accepted | Exception] = []
        self.is_ready = True
        self.hold: threading.Event | None = None
        self.entered = threading.Event()

    def _answer(self) -> Accepted:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(10)
        answer = self.answers.pop(0) if self.answers else Accepted()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def accept_traces(self, request: ExportTraceServiceRequest | TracesAsSent) -> Accepted:
        self.traces.append(request.message() if isinstance(request, TracesAsSent) else request)
        return self._answer()

    def accept_logs(self, request: ExportLogsServiceRequest) -> Accepted:
        self.logs.append(request)
        return self._answer()

    def ready(self) -> bool:
        return self.is_ready


def finished_spans(count: int = 3) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    for index in range(count):
        with tracer.start_as_current_span(
            f"chat gpt-4o #{index}",
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
        ):
            pass
    return list(exporter.get_finished_spans())


def finished_logs() -> list[ReadableLogRecord]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("opentelemetry.instrumentation.openai_v2")
    logger.emit(event_name="gen_ai.user.message", body={"content": "Hi"})
    return list(exporter.get_finished_logs())
