"""Writes the sample OTLP files in this directory from real SDK spans and log records, through the
SDK's own OTLP encoders. Deterministic (fixed ids and times): run it again after changing it.

    .venv/bin/python tests/data/otlp/generate.py

- `chat.traces.pb` / `chat.logs.pb`: one protobuf request each.
- `chat.traces.json` / `chat.logs.json`: the same as OTLP/JSON, written as the Collector writes
  it (hex ids, lowerCamelCase, enums as integers, 64-bit integers as strings).
- `collector.jsonl`: what a Collector `file` exporter shared by a traces, a logs and a metrics
  pipeline writes: one request per line, in the order they came, metrics included.
"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

HERE = Path(__file__).parent
RESOURCE = Resource({"service.name": "support-bot", "deployment.environment": "test"})
T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z, in ns
MS = 1_000_000
INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Where is my order #1234?"}]}]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "It left the warehouse this morning."}],
        "finish_reason": "stop",
    }
]


class _Counting(IdGenerator):
    def __init__(self, first: int) -> None:
        self._ids = itertools.count(first)

    def generate_trace_id(self) -> int:
        return 0x5B8AA5A2D2C872E8321CF37308D69DF0 + next(self._ids)

    def generate_span_id(self) -> int:
        return 0x051581BF3BB55C40 + next(self._ids)


def traces(first_id: int = 0, question: str = "Where is my order #1234?") -> Message:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, id_generator=_Counting(first_id))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = provider.get_tracer("opentelemetry.instrumentation.flask", "0.59b0")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai_v2", "2.4b0")
    server = app.start_span(
        "POST /chat",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "http.route": "/chat", "server.port": 8000},
        start_time=T0,
    )
    with trace.use_span(server, end_on_exit=False):
        chat = llm.start_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": 14,
                "gen_ai.usage.output_tokens": 9,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                ),
                "gen_ai.output.messages": json.dumps(OUTPUT),
            },
            start_time=T0 + 2 * MS,
        )
        chat.end(end_time=T0 + 900 * MS)
        failed = llm.start_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
            start_time=T0 + 901 * MS,
        )
        failed.set_status(Status(StatusCode.ERROR, "rate limited"))
        failed.end(end_time=T0 + 950 * MS)
    server.end(end_time=T0 + 960 * MS)
    return encode_spans(exporter.get_finished_spans())


def logs(first_id: int = 100) -> Message:
    tracer_provider = TracerProvider(resource=RESOURCE, id_generator=_Counting(first_id))
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("opentelemetry.instrumentation.openai_v2", "2.4b0")
    with tracer_provider.get_tracer("t").start_as_current_span("chat gpt-4o-mini", start_time=T0):
        logger.emit(
            event_name="gen_ai.client.inference.operation.details",
            timestamp=T0 + 900 * MS,
            observed_timestamp=T0 + 900 * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": INPUT,
                "gen_ai.output.messages": OUTPUT,
            },
        )
    # The 1.28-era shape: name in the `event.name` attribute, content in the body, no ids.
    logger.emit(
        observed_timestamp=T0 + 901 * MS,
        attributes={"event.name": "gen_ai.choice", "gen_ai.system": "openai"},
        body={"index": 0, "finish_reason": "stop", "message": {"content": "It left."}},
    )
    provider.get_logger("app").emit(
        observed_timestamp=T0 + 902 * MS, body="order lookup", attributes={"order.id": "1234"}
    )
    return encode_logs(exporter.get_finished_logs())


def otlp_json(request: Message) -> dict[str, Any]:
    """OTLP/JSON as the Collector writes it: proto3 JSON, but hex trace and span ids."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource in document.get("resourceSpans", []) + document.get("resourceLogs", []):
        for scope in resource.get("scopeSpans", []) + resource.get("scopeLogs", []):
            for item in scope.get("spans", []) + scope.get("logRecords", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in item:
                        item[name] = base64.b64decode(item[name]).hex()
    return document


def _line(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


METRICS = {
    "resourceMetrics": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "x"}}]},
            "scopeMetrics": [
                {"metrics": [{"name": "up", "gauge": {"dataPoints": [{"asInt": "1"}]}}]}
            ],
        }
    ]
}


def main() -> None:
    (HERE / "chat.traces.pb").write_bytes(traces().SerializeToString())
    (HERE / "chat.logs.pb").write_bytes(logs().SerializeToString())
    (HERE / "chat.traces.json").write_text(json.dumps(otlp_json(traces()), indent=2) + "\n")
    (HERE / "chat.logs.json").write_text(json.dumps(otlp_json(logs()), indent=2) + "\n")
    lines = [
        _line(otlp_json(traces())),
        _line(otlp_json(logs())),
        _line(METRICS),
        "",
        _line(otlp_json(traces(first_id=10, question="Can I return it?"))),
    ]
    (HERE / "collector.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
