"""Throughput of `otel-labelstudio serve`: OTLP over gRPC and over HTTP, a mixed load.

    .venv/bin/python tests/bench/bench_serve.py [--seconds N] [--in-flight K]

The load is what a busy service sends: requests of 512 spans, 10 % of them GenAI spans
(semantic conventions >= 1.37, ~1 KB prompts as `gen_ai.input.messages` JSON) and 90 % ordinary
HTTP server / HTTP client / database spans. The requests are built once with the real SDK
(`TracerProvider` spans, encoded by `opentelemetry.exporter.otlp.proto.common.trace_encoder`) and
sent as serialised bytes, so the sender spends nothing on encoding.

This process runs the real `Service` (both receivers, the sink, the pipeline: filter, assemble,
extract, route, redact, shape, deliver) with Label Studio STUBBED: a stub with the methods the
pipeline calls, whose `import_raw` only counts and keeps the tasks; they are checked (each
task's span key read) once the clock has stopped. Label Studio is not what is measured here (its
import rate is the subject of other benchmarks); the stub makes `serve` itself the bottleneck.

On a machine with two CPUs or more this process is pinned to one of them and the sender to the
others (`--no-pin` leaves both to the scheduler).

A separate process (multiprocessing, spawn) sends for `--seconds` per transport with `--in-flight`
requests outstanding: raw gRPC calls of `TraceService/Export` (the bytes go as they are, as
`TraceServiceStub.Export` would send them), then httpx POSTs of the same protobuf bytes to
`/v1/traces`. Each request gets fresh trace ids (an 8-byte prefix patched into the bytes), so
every GenAI span is a new interaction and none is deduplicated away. A request the server refuses
as overloaded is retried after a short pause and counted.

Printed per transport: spans/s and requests/s accepted (wall clock, until the pipeline has drained
everything it took), the server process's CPU time per span (`time.process_time()`: all of its
threads, so "on one core" means CPU-seconds, whatever the wall clock says), and spans/s per
CPU-second. Next to it: the rate at which this process merely decodes and scans the same requests
(`genai_spans(outline_traces(b))` in a loop: the request parsed down to its spans, every span
searched, the GenAI ones decoded and cut out, as the receivers do), the floor under any
receiver. `bench_serve_stages.py` splits the rest by stage.
The stub's task count is checked against the GenAI spans accepted; exits 1 when it differs or when
a transport's rate is below the goal (100k spans/s per CPU-second) with --check.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import multiprocessing
import os
import re
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SPANS_PER_REQUEST = 512
GENAI_EVERY = 10  # one span in ten is an LLM call
TEMPLATES = 8  # distinct requests, sent in turn
GOAL_SPANS_PER_CPU_S = 100_000
# Eight bytes that start every trace id in the templates; each send replaces them with its own.
TRACE_PREFIX = bytes.fromhex("b7e15163c0ffee5a")
OVERLOAD_PAUSE_S = 0.02
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROMPT_WORDS = (
    "Summarise the customer's ticket below in two sentences, list the products it mentions, "
    "say whether a refund was requested, and suggest the next step for the support agent. "
    "Ticket: I ordered the standing desk (model SD-200, order 48213) three weeks ago and it "
    "arrived with a cracked leg. I have photos. Support told me on the phone that a "
    "replacement leg would ship within five days but nothing has arrived and the tracking "
    "number they gave me does not work. I would like either the part or a partial refund. "
    "I also bought the monitor arm (MA-3) in the same order and it is fine. Please let me "
    "know what you can do; I work from home and the desk is wobbling. "
)


# ---- the load: real SDK spans, encoded once -----------------------------------------------------


def _genai_attributes(n: int) -> dict[str, Any]:
    prompt = f"[{n}] " + PROMPT_WORDS * 2  # ~1 KB of user text
    answer = (
        "The customer received a standing desk (SD-200, order 48213) with a cracked leg and "
        "has not received the promised replacement; they ask for the part or a partial refund. "
        "Next step: reship the leg with working tracking and offer a goodwill credit."
    )
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": f"chatcmpl-{n}",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": 260,
        "gen_ai.usage.output_tokens": 52,
        "gen_ai.system_instructions": json.dumps(
            [{"type": "text", "content": "You are a helpful support assistant."}]
        ),
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": answer}],
                    "finish_reason": "stop",
                }
            ]
        ),
        "server.address": "api.openai.com",
    }


def _http_server_attributes(n: int) -> dict[str, Any]:
    return {
        "http.request.method": "GET",
        "http.route": "/api/orders/{id}",
        "url.path": f"/api/orders/{40000 + n}",
        "url.scheme": "https",
        "http.response.status_code": 200,
        "server.address": "shop.example.com",
        "server.port": 443,
        "network.protocol.version": "1.1",
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "client.address": "10.0.3.17",
    }


def _http_client_attributes(n: int) -> dict[str, Any]:
    return {
        "http.request.method": "POST",
        "url.full": f"https://payments.internal.example/v2/charges/{n}",
        "http.response.status_code": 201,
        "server.address": "payments.internal.example",
        "server.port": 443,
        "network.protocol.version": "2",
    }


def _db_attributes(n: int) -> dict[str, Any]:
    return {
        "db.system.name": "postgresql",
        "db.namespace": "shop",
        "db.operation.name": "SELECT",
        "db.collection.name": "orders",
        "db.query.text": "SELECT id, status, total, created_at FROM orders WHERE customer_id = $1 "
        "ORDER BY created_at DESC LIMIT 20",
        "server.address": "db-primary.internal",
        "server.port": 5432,
    }


def build_requests(templates: int = TEMPLATES) -> tuple[list[bytes], int]:
    """`templates` serialised ExportTraceServiceRequests of SPANS_PER_REQUEST real SDK spans each,
    and how many GenAI spans each one carries."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class PrefixedIds(RandomIdGenerator):
        """Trace ids that start with TRACE_PREFIX, so a sender can make them new per request."""

        def __init__(self) -> None:
            self.counter = 0

        def generate_trace_id(self) -> int:
            self.counter += 1
            return int.from_bytes(TRACE_PREFIX + struct.pack(">Q", self.counter), "big")

    class Collect(SpanProcessor):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.spans.append(span)

    collected = Collect()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "bench-app",
                "service.version": "1.4.2",
                "deployment.environment": "prod",
            }
        ),
        id_generator=PrefixedIds(),
    )
    provider.add_span_processor(collected)
    tracer = provider.get_tracer("bench.instrumentation", "0.1.0")
    kinds = trace.SpanKind
    requests: list[bytes] = []
    # Traces of GENAI_EVERY spans: an HTTP server span, one LLM call and DB / HTTP client spans
    # under it; the request's last, shorter trace has no LLM call (51 of 512 spans: 9.96 %).
    genai_per_request = SPANS_PER_REQUEST // GENAI_EVERY
    n = 0
    for _ in range(templates):
        collected.spans.clear()
        made = 0
        while made < SPANS_PER_REQUEST:
            size = min(GENAI_EVERY, SPANS_PER_REQUEST - made)
            n += 1
            with tracer.start_as_current_span(
                "GET /api/orders/{id}", kind=kinds.SERVER, attributes=_http_server_attributes(n)
            ):
                for child in range(1, size):
                    n += 1
                    if child == GENAI_EVERY // 2 and size == GENAI_EVERY:
                        name, kind, attrs = "chat gpt-4o-mini", kinds.CLIENT, _genai_attributes(n)
                    elif child % 3 == 0:
                        name, kind, attrs = "POST", kinds.CLIENT, _http_client_attributes(n)
                    else:
                        name, kind, attrs = "SELECT shop.orders", kinds.CLIENT, _db_attributes(n)
                    with tracer.start_as_current_span(name, kind=kind, attributes=attrs):
                        pass
            made += size
        spans = collected.spans
        assert len(spans) == SPANS_PER_REQUEST, len(spans)
        genai = sum(1 for s in spans if "gen_ai.operation.name" in (s.attributes or {}))
        assert genai == genai_per_request, (genai, genai_per_request)
        body = encode_spans(spans).SerializeToString()
        assert body.count(TRACE_PREFIX) == SPANS_PER_REQUEST, "the trace prefix is not unique"
        requests.append(body)
    provider.shutdown()
    return requests, genai_per_request


# ---- Label Studio, stubbed ------------------------------------------------------------------

_TRACE_ID = re.compile(r'"trace_id":"([0-9a-f]*)"')
_SPAN_ID = re.compile(r'"span_id":"([0-9a-f]*)"')


class StubLabelStudio:
    """The methods of `otel_labelstudio.labelstudio.LabelStudio` that the pipeline calls; imports
    are counted, nothing leaves the process. What was imported is checked by `check`, after the
    clock has stopped: Label Studio's work is not `serve`'s."""

    url = "http://label-studio.stub"

    def __init__(self) -> None:
        from otel_labelstudio.labelstudio import Project

        self._project_type = Project
        self.projects: dict[int, Any] = {}
        self.imported = 0
        self.import_calls = 0
        self.keys: set[str] = set()
        self._unchecked: list[Sequence[str]] = []
        self._next_task = 1

    def ensure_project(self, title: str, label_config: str) -> tuple[Any, bool]:
        for project in self.projects.values():
            if project.title == title:
                return project, False
        project = self._project_type(
            id=len(self.projects) + 1, title=title, label_config=label_config
        )
        self.projects[project.id] = project
        return project, True

    def get_project(self, project_id: int) -> Any:
        return self.projects[project_id]

    def import_raw(self, project_id: int, tasks: Sequence[str]) -> Any:
        from otel_labelstudio.labelstudio import Imported

        self.import_calls += 1
        self.imported += len(tasks)
        self._unchecked.append(tasks)  # checked by `check`, once the clock has stopped
        first = self._next_task
        self._next_task += len(tasks)
        return Imported(list(range(first, self._next_task)), None)

    def check(self) -> None:
        """Read the span keys of the tasks imported since the last check (Label Studio's own
        work, so done outside the measured time): the keys with a regex (a tenth of json.loads'
        CPU), every hundredth task parsed whole to check them."""
        while self._unchecked:
            for n, task in enumerate(self._unchecked.pop()):
                trace_id, span_id = _TRACE_ID.search(task), _SPAN_ID.search(task)
                if trace_id is None or span_id is None:
                    raise ValueError(f"a task without ids: {task[:200]}")
                self.keys.add(f"{trace_id[1]}:{span_id[1]}")
                if n % 100 == 0:
                    data = json.loads(task)["data"]
                    assert (data["trace_id"], data["span_id"]) == (trace_id[1], span_id[1])

    def find_span_keys(self, project_id: int, keys: Sequence[str]) -> dict[str, int]:
        self.check()
        return {k: 0 for k in keys if k in self.keys}

    def forget_connections(self) -> None:
        pass

    def close(self) -> None:
        pass


# ---- the sender (its own process) -------------------------------------------------------------


@dataclass
class SendResult:
    transport: str
    requests: int = 0  # accepted
    refused: int = 0  # overloaded / unavailable, retried
    errors: list[str] = field(default_factory=list)
    started: float = 0.0  # time.time()
    ended: float = 0.0


def _fresh(template: bytes, sequence: int) -> bytes:
    # Never the template's own prefix, never zero: bit 63 set, the sender's sequence below it.
    return template.replace(TRACE_PREFIX, struct.pack(">Q", (1 << 63) | sequence))


def sender_main(
    transport: str,
    target: str,
    templates: list[bytes],
    seconds: float,
    in_flight: int,
    sequence_base: int,
    ready: Any,
    go: Any,
    results: Any,
    sender_cpus: set[int],
) -> None:
    if sender_cpus:
        os.sched_setaffinity(0, sender_cpus)
    try:
        result = (_send_grpc if transport == "grpc" else _send_http)(
            target, templates, seconds, in_flight, sequence_base, ready, go
        )
    except Exception as exc:  # report, never hang the parent
        result = SendResult(transport, errors=[f"{type(exc).__name__}: {exc}"])
        ready.set()
    results.put(dataclasses.asdict(result))


def _send_grpc(
    target: str,
    templates: list[bytes],
    seconds: float,
    in_flight: int,
    sequence_base: int,
    ready: Any,
    go: Any,
) -> SendResult:
    import grpc

    result = SendResult("grpc")
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        # As TraceServiceStub.Export, minus encoding: the request is already bytes.
        export = channel.unary_unary(
            GRPC_METHOD, request_serializer=None, response_deserializer=None
        )
        retryable = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
        ready.set()
        go.wait()
        result.started = time.time()
        deadline = time.monotonic() + seconds
        sequence = sequence_base
        pending: collections.deque[tuple[Any, bytes]] = collections.deque()

        def submit(body: bytes) -> None:
            pending.append((export.future(body, timeout=60), body))

        while time.monotonic() < deadline or pending:
            while len(pending) < in_flight and time.monotonic() < deadline:
                sequence += 1
                submit(_fresh(templates[sequence % len(templates)], sequence))
            if not pending:
                break
            future, body = pending.popleft()
            try:
                future.result()
                result.requests += 1
            except grpc.RpcError as exc:
                if exc.code() in retryable:
                    result.refused += 1
                    time.sleep(OVERLOAD_PAUSE_S)
                    submit(body)  # the same spans again, as an exporter would retry
                else:
                    result.errors.append(f"{exc.code()}: {exc.details()}")
                    if len(result.errors) > 20:
                        break
        result.ended = time.time()
    return result


def _send_http(
    target: str,
    templates: list[bytes],
    seconds: float,
    in_flight: int,
    sequence_base: int,
    ready: Any,
    go: Any,
) -> SendResult:
    import httpx

    result = SendResult("http")
    lock = threading.Lock()
    counter = iter(range(sequence_base + 1, sequence_base + 10**9))
    headers = {"content-type": "application/x-protobuf"}
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    with httpx.Client(timeout=60, limits=limits, trust_env=False) as client:
        client.get(f"{target}/healthz")  # connect before the clock starts
        ready.set()
        go.wait()
        result.started = time.time()
        deadline = time.monotonic() + seconds

        def worker() -> None:
            while time.monotonic() < deadline:
                with lock:
                    sequence = next(counter)
                body = _fresh(templates[sequence % len(templates)], sequence)
                while True:
                    response = client.post(f"{target}/v1/traces", content=body, headers=headers)
                    if response.status_code == 200:
                        with lock:
                            result.requests += 1
                        break
                    if response.status_code in (429, 503):
                        with lock:
                            result.refused += 1
                        time.sleep(OVERLOAD_PAUSE_S)
                        continue
                    with lock:
                        result.errors.append(f"{response.status_code}: {response.text[:200]}")
                    return

        threads = [threading.Thread(target=worker) for _ in range(in_flight)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result.ended = time.time()
    return result


# ---- the server side: this process ------------------------------------------------------------


@dataclass
class RunFigures:
    transport: str
    sent: SendResult
    spans: int
    genai: int
    wall_s: float  # first request sent → pipeline drained
    drain_s: float  # sender done → pipeline drained
    cpu_s: float  # this process, all threads, over wall_s
    worker_cpu_s: float | None  # of which the pipeline's worker thread (Linux only)
    tasks: int  # imported into the stub during the run
    unique_tasks: int
    stats: dict[str, int]


def run_transport(
    transport: str,
    service: Any,
    stub: StubLabelStudio,
    templates: list[bytes],
    genai_per_request: int,
    seconds: float,
    in_flight: int,
    sequence_base: int,
    sender_cpus: set[int],
) -> RunFigures:
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Event(), context.Event(), context.Queue()
    target = (
        f"127.0.0.1:{service.grpc.port}"
        if transport == "grpc"
        else f"http://127.0.0.1:{service.http.port}"
    )
    process = context.Process(
        target=sender_main,
        args=(
            transport,
            target,
            templates,
            seconds,
            in_flight,
            sequence_base,
            ready,
            go,
            results,
            sender_cpus,
        ),
        daemon=True,
    )
    process.start()
    if not ready.wait(120):
        process.kill()
        raise SystemExit(f"{transport} sender did not start")
    stub.check()
    tasks_before, keys_before = stub.imported, len(stub.keys)
    worker = service.pipeline._thread.native_id
    worker_before = thread_cpu_s(worker)
    cpu_before, wall_before = time.process_time(), time.monotonic()
    go.set()
    sent = SendResult(**results.get(timeout=seconds + 180))
    sender_done = time.monotonic()
    drained = service.pipeline.force_flush(120)
    wall_after, cpu_after = time.monotonic(), time.process_time()
    worker_after = thread_cpu_s(worker)
    stub.check()
    process.join(30)
    if not drained:
        sent.errors.append("the pipeline did not drain within 120 s")
    spans = sent.requests * SPANS_PER_REQUEST
    return RunFigures(
        transport=transport,
        sent=sent,
        spans=spans,
        genai=sent.requests * genai_per_request,
        wall_s=wall_after - wall_before,
        drain_s=wall_after - sender_done,
        cpu_s=cpu_after - cpu_before,
        worker_cpu_s=(
            worker_after - worker_before
            if worker_after is not None and worker_before is not None
            else None
        ),
        tasks=stub.imported - tasks_before,
        unique_tasks=len(stub.keys) - keys_before,
        stats=service.pipeline.stats(),
    )


def pin_to_one_core(pin: bool) -> tuple[set[int], set[int]]:
    """Pin this process (serve, and the decode-only loop) to one CPU and leave the others to the
    sender, so "spans per CPU-second" is measured on one core, as the goal says, with no thread
    of serve migrating between cores and none of the sender's on serve's (measured on 2 CPUs:
    ~10-15 % more spans per CPU-second than unpinned). (set(), set()) when not pinned."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        return set(), set()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(), set()
    server, sender = {cpus[0]}, set(cpus[1:])
    os.sched_setaffinity(0, server)
    return server, sender


def thread_cpu_s(native_id: int | None) -> float | None:
    """User + system CPU seconds of one thread of this process, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_scan_rate(templates: list[bytes], seconds: float) -> tuple[float, float, int]:
    """Spans per CPU-second and per wall second for decode + scan alone, and the GenAI spans
    one pass over the templates finds."""
    from otel_labelstudio.receiver.otlp import genai_spans, outline_traces

    records_per_pass = sum(genai_spans(outline_traces(b)).kept for b in templates)
    spans = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    deadline = wall0 + seconds
    while time.perf_counter() < deadline:
        for body in templates:
            genai_spans(outline_traces(body))
        spans += SPANS_PER_REQUEST * len(templates)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return spans / cpu, spans / wall, records_per_pass


def warm_up(service: Any, template: bytes) -> None:
    """One request over HTTP, flushed: the project is resolved and the label config parsed (the
    SDK's parser takes ~2 s to import) before any clock starts."""
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{service.http.port}/v1/traces",
        content=_fresh(template, 1),
        headers={"content-type": "application/x-protobuf"},
        timeout=60,
        trust_env=False,
    )
    response.raise_for_status()
    if not service.pipeline.force_flush(120):
        raise SystemExit(f"warm-up did not drain: {service.pipeline.stats()}")


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="sending time per transport")
    parser.add_argument("--in-flight", type=int, default=4, help="requests outstanding")
    parser.add_argument("--decode-seconds", type=float, default=5.0)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="leave serve and the sender to the scheduler (by default serve is pinned to one "
        "CPU and the sender to the others)",
    )
    parser.add_argument(
        "--transports", default="grpc,http", help="comma-separated: grpc, http (default both)"
    )
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 below {GOAL_SPANS_PER_CPU_S:,} spans/CPU-s"
    )
    args = parser.parse_args(argv)
    server_cpus, sender_cpus = pin_to_one_core(args.pin)

    from otel_labelstudio.config import Settings
    from otel_labelstudio.pipeline import Pipeline
    from otel_labelstudio.receiver.service import Service

    started = time.perf_counter()
    templates, genai_per_request = build_requests()
    request_kb = sum(map(len, templates)) / len(templates) / 1024
    print(
        f"load: {len(templates)} distinct requests of {SPANS_PER_REQUEST} spans "
        f"({genai_per_request} GenAI = {genai_per_request / SPANS_PER_REQUEST:.1%}, the rest "
        f"HTTP server/client and DB spans), {request_kb:.0f} KiB each as protobuf; built with "
        f"the OpenTelemetry SDK in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    settings = Settings.load(
        {
            "url": StubLabelStudio.url,
            "project_name": "bench-serve",
            "mode": "auto",
            "grpc_endpoint": "127.0.0.1:0",
            "http_endpoint": "127.0.0.1:0",
            # The durable spool, as in production, in a directory of the bench's own.
            "spool": tempfile.mkdtemp(prefix="bench-serve-spool-"),
        },
        environ={},
    )
    stub = StubLabelStudio()
    pipeline = Pipeline(settings, label_studio=stub)  # type: ignore[arg-type]
    service = Service(settings, pipeline=pipeline)
    service.start()
    print(
        f"serve: gRPC 127.0.0.1:{service.grpc.port}, HTTP 127.0.0.1:{service.http.port}; "
        f"Label Studio STUBBED (imports are counted, not sent); pipeline settings as defaults "
        f"(batch_size {settings.batch_size}, max_queue_size {settings.max_queue_size}, "
        f"join_window_s {settings.join_window_s}); {os.cpu_count()} CPUs on this machine; "
        + (
            f"this process (serve) pinned to CPU {sorted(server_cpus)}, the sender to "
            f"{sorted(sender_cpus)}"
            if sender_cpus
            else "not pinned"
        ),
        flush=True,
    )
    failures: list[str] = []
    runs: list[RunFigures] = []
    try:
        warm_up(service, templates[0])
        for index, transport in enumerate(t.strip() for t in args.transports.split(",")):
            run = run_transport(
                transport,
                service,
                stub,
                templates,
                genai_per_request,
                args.seconds,
                args.in_flight,
                sequence_base=(index + 1) << 40,
                sender_cpus=sender_cpus,
            )
            runs.append(run)
            report_run(run, args.in_flight)
            failures.extend(check_run(run, args.check))
    finally:
        service.stop(30)

    decode_cpu, decode_wall, records = decode_scan_rate(templates, args.decode_seconds)
    print(
        "\ndecode + scan only (genai_spans(outline_traces(b)), one "
        f"thread, same requests; {records} GenAI spans per {len(templates)} requests): "
        f"{_fmt(decode_cpu)} spans per CPU-second ({_fmt(decode_wall)} spans/s wall)"
    )
    print(f"\nsummary (spans per CPU-second of the server process; goal {GOAL_SPANS_PER_CPU_S:,}):")
    for run in runs:
        per_cpu = run.spans / run.cpu_s if run.cpu_s else 0.0
        wall = run.spans / run.wall_s
        print(
            f"  {run.transport:<5} {_fmt(per_cpu):>9} spans/CPU-s  {_fmt(wall):>9} spans/s wall"
            f"  ({per_cpu / decode_cpu:.0%} of decode + scan only)"
        )
    print(f"  decode+scan {_fmt(decode_cpu):>9} spans/CPU-s")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


def report_run(run: RunFigures, in_flight: int) -> None:
    sent = run.sent
    send_s = max(sent.ended - sent.started, 1e-9)
    per_cpu = run.spans / run.cpu_s if run.cpu_s else 0.0
    print(f"\n{run.transport}: {in_flight} requests in flight for {send_s:.1f} s")
    print(
        f"  accepted      {sent.requests:,} requests = {run.spans:,} spans "
        f"({run.genai:,} GenAI); refused as overloaded and retried: {sent.refused:,}"
    )
    print(
        f"  throughput    {_fmt(run.spans / run.wall_s)} spans/s, "
        f"{sent.requests / run.wall_s:,.1f} requests/s (wall, until drained; "
        f"drain after the last request {run.drain_s:.2f} s)"
    )
    print(
        f"  server CPU    {run.cpu_s:.2f} CPU-s over {run.wall_s:.2f} s wall "
        f"({run.cpu_s / run.wall_s:.2f} cores busy): {run.cpu_s / max(run.spans, 1) * 1e6:.2f} "
        f"µs per span = {_fmt(per_cpu)} spans per CPU-second"
    )
    if run.worker_cpu_s is not None:
        rest = run.cpu_s - run.worker_cpu_s
        print(
            f"    of which    pipeline worker {run.worker_cpu_s:.2f} CPU-s "
            f"({run.worker_cpu_s / max(run.genai, 1) * 1e6:.0f} µs per GenAI span); receivers "
            f"and the rest {rest:.2f} CPU-s ({rest / max(run.spans, 1) * 1e6:.2f} µs per span "
            f"= {_fmt(run.spans / rest if rest > 0 else 0)} spans per CPU-second)"
        )
    print(
        f"  Label Studio  (stub) {run.tasks:,} tasks imported, {run.unique_tasks:,} distinct; "
        f"expected {run.genai:,} (one per GenAI span accepted)"
    )
    interesting = {
        k: v
        for k, v in run.stats.items()
        if v and (k.startswith(("dropped", "assembler_", "delivery_", "route_")) or k == "pending")
    }
    if interesting:
        print(f"  pipeline      {interesting}")
    if sent.errors:
        print(f"  errors        {sent.errors[:5]}")


def check_run(run: RunFigures, check_goal: bool) -> list[str]:
    failures = []
    if run.sent.errors:
        failures.append(f"{run.transport}: sender errors: {run.sent.errors[:3]}")
    if run.tasks != run.genai or run.unique_tasks != run.genai:
        failures.append(
            f"{run.transport}: the stub got {run.tasks} tasks ({run.unique_tasks} distinct), "
            f"expected {run.genai}"
        )
    if check_goal and run.cpu_s and run.spans / run.cpu_s < GOAL_SPANS_PER_CPU_S:
        failures.append(f"{run.transport}: below {GOAL_SPANS_PER_CPU_S:,} spans per CPU-second")
    return failures


if __name__ == "__main__":
    sys.exit(main())
