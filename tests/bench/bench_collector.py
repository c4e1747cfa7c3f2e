"""otel-labelstudio behind the OpenTelemetry Collector: 1 vs 3 replicas, and the Collector alone.

    .venv/bin/python tests/bench/bench_collector.py [--spans N] [--replicas 1,3]

Everything is real and on 127.0.0.1: the Collector built from collector/manifest.yaml
(scripts/build-collector.sh), `otel-labelstudio serve` processes, one embedded Label Studio
(SQLite, as the tests run it). The load is N GenAI spans, each
its own trace and a one-turn chat with its own text (GenAI >= 1.37 attributes; identical calls
at the same moment would be labelled once), built beforehand with the OpenTelemetry SDK and
sent by its OTLP/gRPC exporter in requests of 512 spans to the Collector, which spreads them by
trace id (collector/scale-out.yaml) over the replicas, all writing into one Label Studio
project. (telemetrygen cannot vary the text per span, so it is the sender only for the
Collector alone.)

Printed per replica count, from the moment the first request is sent:
- intake: spans/s until the replicas have accepted (acknowledged) all N spans, from their
  /metrics;
- ingest: tasks/s until Label Studio holds all N tasks (the project's task count).
And the Collector alone, for scale: telemetrygen unthrottled for 5 s into otlp -> batch -> nop,
the spans/s the Collector's own counter says it accepted.

The machine has 2 cores shared by the Collector, every replica, Label Studio and telemetrygen
(and anything else running): the figures are for comparison on this machine, not capacities.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from collector_support import (  # noqa: E402
    Collector,
    Replica,
    build,
    free_port,
    telemetrygen_traces,
    wait_for,
)
from label_studio_sdk import LabelStudio  # noqa: E402

from otel_labelstudio.embedded import EmbeddedLabelStudio, RunningLabelStudio  # noqa: E402

WORKERS = 4
BATCH = 512
TOKEN = "bench-collector-receiver-token"

NOP_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "${env:COLLECTOR_GRPC_ENDPOINT}"}
      http: {endpoint: "${env:COLLECTOR_HTTP_ENDPOINT}"}
processors:
  batch: {send_batch_size: 512, timeout: 200ms}
exporters:
  nop: {}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [nop]}
"""


def genai_spans(count: int) -> list[ReadableSpan]:
    """`count` finished LLM-call spans, each its own trace, each with its own prompt."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(count):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": f"q {i}"}]}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": f"a {i}"}]}]
                    ),
                }
            )
    provider.shutdown()
    return list(memory.get_finished_spans())


def send(collector: Collector, spans: Sequence[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
    for start in range(0, len(spans), BATCH):
        assert exporter.export(spans[start : start + BATCH]) == SpanExportResult.SUCCESS
    exporter.shutdown()


def accepted_by(collector: Collector) -> int:
    """The spans the Collector's receiver accepted, once the count stops moving.

    telemetrygen's SDK drops spans when its export queue is full (it sends faster than any
    receiver here takes them), so what was sent is read here, not assumed."""
    last, stable = -1, 0
    while stable < 3:
        counters = collector.metrics()
        now = int(
            counters.get("otelcol_receiver_accepted_spans_total")
            or counters.get("otelcol_receiver_accepted_spans")
            or 0
        )
        stable = stable + 1 if now == last else 0
        last = now
        time.sleep(0.3)
    return last


def collector_alone(binary: Path, telemetrygen: Path, workdir: Path) -> None:
    """telemetrygen unthrottled for 5 s: the spans per second the Collector accepted. The sender
    shares the two cores (and drops what its own queue cannot hold), so this is a floor."""
    config = workdir / "nop.yaml"
    config.write_text(NOP_CONFIG)
    collector = Collector(binary, [config], {}, workdir / "nop", metrics_port=free_port()).start()
    try:
        started = time.monotonic()
        telemetrygen_traces(
            telemetrygen,
            f"127.0.0.1:{collector.grpc_port}",
            traces=0,
            workers=WORKERS,
            child_spans=1,
            rate=0,
            batch_size=BATCH,
            duration_s=5.0,
            timeout=120,
        )
        elapsed = time.monotonic() - started
        accepted = accepted_by(collector)
        print(
            f"Collector alone (otlp -> batch -> nop): {accepted / elapsed:,.0f} spans/s "
            f"accepted ({accepted} in {elapsed:.1f} s, telemetrygen unthrottled on the same cores)"
        )
    finally:
        collector.stop()


def task_count(client: LabelStudio, title: str) -> int:
    return sum(p.task_number or 0 for p in client.projects.list(title=title) if p.title == title)


def through_replicas(
    binary: Path,
    studio: RunningLabelStudio,
    count: int,
    load: Sequence[ReadableSpan],
    workdir: Path,
) -> None:
    spans = len(load)
    title = f"bench-collector-{count}-replicas-{int(time.time())}"
    replicas = [
        Replica(
            name=f"r{i}",
            workdir=workdir / f"x{count}",
            ls_url=studio.url,
            ls_key=studio.personal_access_token,
            project_title=title,
            token=TOKEN,
            join_window_s=2.0,
        ).start()
        for i in range(count)
    ]
    collector: Collector | None = None
    client = LabelStudio(base_url=studio.url, api_key=studio.legacy_token)
    try:
        for replica in replicas:
            replica.wait_ready()
        endpoints = ", ".join(r.grpc_endpoint for r in replicas)
        collector = Collector(
            binary,
            [REPO / "collector" / "scale-out.yaml"],
            {"OTEL_LABELSTUDIO_REPLICAS": f"[{endpoints}]", "OTEL_LABELSTUDIO_TOKEN": TOKEN},
            workdir / f"x{count}" / "collector",
        ).start()
        started = time.monotonic()
        send(collector, load)
        sent = time.monotonic() - started
        wait_for(
            lambda: sum(r.accepted("traces") for r in replicas) >= spans,
            600,
            "the replicas' intake",
            interval=0.1,
        )
        intake = time.monotonic() - started
        wait_for(lambda: task_count(client, title) >= spans, 900, "the tasks", interval=0.5)
        ingest = time.monotonic() - started
        tasks = task_count(client, title)
        shares = [int(r.accepted("traces")) for r in replicas]
        print(
            f"{count} replica(s), {spans} spans: all sent in {sent:.2f} s; "
            f"intake {spans / intake:,.0f} spans/s ({intake:.2f} s, per replica {shares}); "
            f"ingest {tasks / ingest:,.0f} tasks/s ({tasks} tasks in {ingest:.2f} s)"
        )
        assert tasks == spans, f"{tasks} tasks for {spans} spans"
    finally:
        if collector is not None:
            collector.stop()
        for replica in replicas:
            replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=6000)
    parser.add_argument("--replicas", default="1,3")
    args = parser.parse_args()
    binary, telemetrygen = build("collector"), build("telemetrygen")
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        collector_alone(binary, telemetrygen, workdir)
        studio = EmbeddedLabelStudio().start()
        try:
            for count in (int(c) for c in args.replicas.split(",")):
                load = genai_spans(args.spans)  # new trace ids for every run
                through_replicas(binary, studio, count, load, workdir)
        finally:
            studio.stop()


if __name__ == "__main__":
    main()
