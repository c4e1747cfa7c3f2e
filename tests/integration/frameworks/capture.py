"""In a driver process: an SDK that keeps what the instrumentation emits, written per scenario as
OTLP protobuf files (`<scenario>.traces.pb`, `<scenario>.logs.pb`), the form `replay` reads.

Drivers run in their own process (one per framework and mode): instrumentors patch libraries
globally, some can be instrumented only once per process, and two of them on one library would
each see the other's calls.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as _LogExporter
except ImportError:  # older SDKs (the legacy venvs)
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as _LogExporter


class Capture:
    def __init__(self, service: str, out_dir: Path) -> None:
        self.out_dir = out_dir
        resource = Resource.create({"service.name": service})
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.logs = _LogExporter()
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        trace.set_tracer_provider(self.tracer_provider)
        set_logger_provider(self.logger_provider)

    def run(self, scenarios: dict[str, Callable[[], object]], only: list[str]) -> int:
        """Run each scenario, write its files. A scenario that raises where it should not is
        reported on stderr and makes the exit code 1; failed-call scenarios catch their own."""
        status = 0
        for name, scenario in scenarios.items():
            if only and name not in only:
                continue
            try:
                scenario()
            except Exception:
                traceback.print_exc()
                print(f"scenario {name} raised", file=sys.stderr)
                status = 1
            self.tracer_provider.force_flush()
            self.logger_provider.force_flush()
            spans = self.spans.get_finished_spans()
            logs = self.logs.get_finished_logs()
            self.spans.clear()
            self.logs.clear()
            (self.out_dir / f"{name}.traces.pb").write_bytes(
                encode_spans(spans).SerializeToString()
            )
            (self.out_dir / f"{name}.logs.pb").write_bytes(encode_logs(logs).SerializeToString())
        return status
