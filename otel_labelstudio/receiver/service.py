"""`otel-labelstudio serve`: the OTLP front door (gRPC and HTTP) on the same pipeline as the
in-process exporter.

The servers decode requests and answer with OTLP's status semantics; `PipelineSink` turns each
request into records (the GenAI filter first: most spans cost only a key scan) and hands them to
the pipeline. A request is acknowledged once what it carried is committed to the spool; when the
spool is at its bound the sender is told to retry later, so the data stays with it.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from otel_labelstudio.config import Settings
from otel_labelstudio.pipeline import Pipeline
from otel_labelstudio.receiver.grpc_server import GrpcReceiver
from otel_labelstudio.receiver.http_server import HttpReceiver
from otel_labelstudio.receiver.otlp import GenAIPart, TracesAsSent, genai_events, genai_spans
from otel_labelstudio.receiver.sink import Accepted, Overloaded, Unavailable
from otel_labelstudio.spool import OTLP_LOGS, OTLP_TRACES, Encoded

__all__ = ["PipelineSink", "Service"]

logger = logging.getLogger(__name__)

# How long a sender should wait before retrying when we are full: about one worker cycle and
# one import request, the time it takes the queue to drain a batch.
_RETRY_AFTER_FULL_S = 2.0
_RETRY_AFTER_SHUTDOWN_S = 5.0
_RETRY_AFTER_OUTAGE_S = 10.0


class PipelineSink:
    """Requests in, records into the pipeline. Called from the servers' threads."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def accept_traces(self, request: ExportTraceServiceRequest | TracesAsSent) -> Accepted:
        part = genai_spans(request)
        return self._accept(part, OTLP_TRACES, part.kept, "spans")

    def accept_logs(self, request: ExportLogsServiceRequest) -> Accepted:
        return self._accept(genai_events(request), OTLP_LOGS, 0, "log records")

    def ready(self) -> bool:
        return self.pipeline.accepting and not self.pipeline.spool_full

    def _accept(self, decoded: GenAIPart, kind: int, spans: int, what: str) -> Accepted:
        """Spool the GenAI part of a request as it came (protobuf; the worker makes records of
        it), or refuse the whole request."""
        if not self.pipeline.accepting:
            raise Unavailable(retry_after_s=_RETRY_AFTER_SHUTDOWN_S)
        if decoded.body is not None and not self.pipeline.accept_encoded(
            Encoded(kind, decoded.body, decoded.kept, spans)
        ):
            if not self.pipeline.accepting:
                raise Unavailable(retry_after_s=_RETRY_AFTER_SHUTDOWN_S)
            if self.pipeline.label_studio_failing:
                raise Unavailable(
                    retry_after_s=_RETRY_AFTER_OUTAGE_S,
                    message="Label Studio is unavailable and the spool is full",
                )
            raise Overloaded(retry_after_s=_RETRY_AFTER_FULL_S, message="the spool is full")
        if not decoded.rejected:
            return Accepted()
        reasons = "; ".join(decoded.reasons)
        return Accepted(rejected=decoded.rejected, message=f"{decoded.rejected} {what}: {reasons}")


class PipelineMetrics(Collector):
    """The pipeline's counters, read when Prometheus scrapes (no work on the hot path)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.pipeline.stats()
        delivered = CounterMetricFamily(
            "otel_labelstudio_tasks_imported", "Tasks imported into Label Studio"
        )
        delivered.add_metric([], stats.get("delivered", 0))
        yield delivered
        interactions = CounterMetricFamily(
            "otel_labelstudio_interactions", "GenAI interactions (LLM calls) recognised"
        )
        interactions.add_metric([], stats.get("interactions", 0))
        yield interactions
        dropped = CounterMetricFamily(
            "otel_labelstudio_dropped",
            "Telemetry or interactions not turned into tasks, by reason",
            labels=["reason"],
        )
        for name, value in sorted(stats.items()):
            if name.startswith(("dropped_", "route_", "assembler_", "delivery_")) or name in (
                "not_an_llm_call",
                "failed_call_skipped",
                "same_call_described_twice",
                "duplicate_interaction",
            ):
                dropped.add_metric([name], value)
        yield dropped
        pending = GaugeMetricFamily(
            "otel_labelstudio_pending", "Interactions waiting for Label Studio"
        )
        pending.add_metric([], stats.get("pending", 0))
        yield pending
        queued = GaugeMetricFamily("otel_labelstudio_queue_depth", "Items waiting for the worker")
        queued.add_metric([], self.pipeline.queue_depth)
        yield queued
        refused = CounterMetricFamily(
            "otel_labelstudio_refused",
            "Spans and log records senders were asked to send again later, by reason",
            labels=["reason"],
        )
        for name, value in sorted(stats.items()):
            if name.startswith("refused_"):
                refused.add_metric([name.removeprefix("refused_")], value)
        yield refused
        for name, help_text, key in (
            ("spool_bytes", "Bytes of telemetry and tasks in the spool", "spool_bytes"),
            (
                "spooled_records",
                "Spans and events in the spool not yet made tasks",
                "spooled_records",
            ),
            (
                "dead_letters",
                "Tasks Label Studio refused for good (otel-labelstudio dlq)",
                "dead_letter",
            ),
        ):
            gauge = GaugeMetricFamily(f"otel_labelstudio_{name}", help_text)
            gauge.add_metric([], stats.get(key, 0))
            yield gauge


class Service:
    """Both servers and the pipeline, started and stopped together."""

    def __init__(self, settings: Settings, *, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline or Pipeline(settings)
        self.registry = CollectorRegistry()
        self.registry.register(PipelineMetrics(self.pipeline))
        sink = PipelineSink(self.pipeline)
        token = settings.receiver_auth_token
        tls = (
            (settings.tls_cert_file, settings.tls_key_file)
            if settings.tls_cert_file is not None and settings.tls_key_file is not None
            else None
        )
        common: dict[str, Any] = {
            "auth_token": token.get_secret_value() if token is not None else None,
            "tls": tls,
            "registry": self.registry,
        }
        self.grpc = GrpcReceiver(
            sink,
            settings.grpc_endpoint,
            max_receive_bytes=settings.max_request_bytes,
            **common,
        )
        self.http = HttpReceiver(
            sink,
            settings.http_endpoint,
            max_body_bytes=settings.max_request_bytes,
            **common,
        )
        self._stopped = threading.Event()

    def start(self) -> None:
        _tune_interpreter()
        self.pipeline.yield_to_application = False  # the receivers are the only other threads
        self.grpc.start()
        self.http.start()
        logger.info(
            "otel-labelstudio receiving OTLP on gRPC %s (port %d) and HTTP %s (port %d)",
            self.settings.grpc_endpoint,
            self.grpc.port,
            self.settings.http_endpoint,
            self.http.port,
        )

    def stop(self, deadline_s: float = 30.0) -> bool:
        """Refuse new requests (senders are told to retry), finish those in flight, then drain
        the pipeline into Label Studio, all within `deadline_s`."""
        grace = min(5.0, deadline_s / 3)
        self.grpc.stop(grace)
        self.http.stop(grace)
        drained = self.pipeline.shutdown(max(1.0, deadline_s - grace))
        self._stopped.set()
        return drained

    def run_until_signalled(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> bool:
        stop_requested = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            logger.info("received signal %d: draining", signum)
            stop_requested.set()

        for signum in signals:
            signal.signal(signum, request_stop)
        self.start()
        while not stop_requested.wait(1.0):
            pass
        return self.stop()


# Container objects allocated (net) between two young collections; CPython's default is 700.
_GC_YOUNG_THRESHOLD = 50_000
# How long a thread keeps the GIL when another wants it; CPython's default is 5 ms.
_SWITCH_INTERVAL_S = 0.02


@functools.cache  # once per process (tests start many services in one)
def _tune_interpreter() -> None:
    """CPython's defaults suit an application; `serve` is a throughput service, and two of its
    defaults cost it measurably (tests/bench/bench_serve.py, one core):

    - The garbage collector. The service's data has no reference cycles (records, dicts,
      tuples, strings), yet every 700 allocations CPython walks the young objects, and every so
      often all of them, the modules' own included: the worker took 158 µs of CPU per LLM call
      with the defaults, 132 without. Objects alive at start-up are frozen out of collections,
      and the young generation grows to 50,000 before it is collected (cycles still are).
    - The switch interval. The receivers and the worker take turns on the GIL; each turn leaves
      the other's data cold in the caches. Turns of 20 ms rather than 5 gave 6-10 % more spans
      per CPU-second in four paired runs; a request waits at most that long for its turn.

    `OTEL_LABELSTUDIO_TUNE=off` keeps CPython's settings."""
    if os.environ.get("OTEL_LABELSTUDIO_TUNE", "").strip().lower() == "off":
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(max(_GC_YOUNG_THRESHOLD, gc.get_threshold()[0]), older, oldest)
    sys.setswitchinterval(max(_SWITCH_INTERVAL_S, sys.getswitchinterval()))
