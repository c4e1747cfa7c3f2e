"""Where `serve`'s CPU goes, stage by stage, on the load of bench_serve.py.

    .venv/bin/python tests/bench/bench_serve_stages.py [--requests N] [--rounds K]

bench_serve.py measures the whole service (both receivers, threads, the GIL); this runs the same
stages one after the other in one thread, on the same requests (512 spans, 10 % GenAI with ~1 KB
prompts), so each one's cost can be read on its own and a change to one can be measured without
the noise of the others:

    outline           outline_traces(body): the request parsed down to its spans, which stay
                      bytes (the receivers' first step; nothing is decoded whole)
    cut GenAI part    genai_spans(outline): every span searched in the bytes it was sent as,
                      those holding a needle decoded and checked, the GenAI ones copied out
    spool request     Spool.add_encoded: one committed row per request
    read + decode     Spool.read_records: the row back, its spans made records (the worker)
    route             Stages.route: extract the interaction, dedupe, route, redact
    shape             task_for with the default auto layout
    hand over         Delivery.hold: JSON-encode, keep in memory with the tasks' inbox rows (what
                      the worker does while delivery keeps up)
    deliver           Delivery.deliver into a stub Label Studio that only counts (no HTTP): the
                      held tasks' keys checked and marked in flight, the import, then the ledger
                      and the inbox rows forgotten

Below the total, the path tasks take while Label Studio fails (not in the total): on the same
tasks in another spool, `Spool.add_tasks` (JSON-encode, store, forget the inbox rows), then
`Delivery.deliver` from the spool (read back, mark in flight, import, ledger, delete).

Each stage runs over `--requests` requests; the whole sequence is repeated `--rounds` times on a
fresh spool and the best round of each stage is printed, in CPU time (`time.process_time()`),
as µs per GenAI span and µs per span of the load. The total is the CPU one span costs `serve`
without the servers' own work (gRPC / HTTP framing, threads), so bench_serve.py's figure is
below it. Last line: the same request with its LLM calls taken out, decoded whole and scanned
span by span (as the receivers did before they outlined), and as the receivers now take it
(outlined, counted, and passed over after one search of its body).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_serve  # the load and the stub are bench_serve's

STORED = "stored: "  # the stages of the path through the spool's tasks table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from otel_labelstudio.assemble import Joined
    from otel_labelstudio.config import Settings
    from otel_labelstudio.delivery import Delivery
    from otel_labelstudio.pipeline import Stages
    from otel_labelstudio.receiver.otlp import genai_spans, may_hold_genai, outline_traces
    from otel_labelstudio.receiver.sink import count_items
    from otel_labelstudio.routing import Router
    from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for
    from otel_labelstudio.spool import OTLP_TRACES, Encoded, Spool

    templates, genai_per_request = bench_serve.build_requests()
    bodies = [
        bench_serve._fresh(templates[n % len(templates)], n + 1) for n in range(args.requests)
    ]
    genai = args.requests * genai_per_request
    spans = args.requests * bench_serve.SPANS_PER_REQUEST
    settings = Settings.load({"url": "http://stub", "project_name": "b", "mode": "auto"}, {})
    layout = parse_label_config(default_label_config(Shape.AUTO))
    best: dict[str, float] = {}

    def stage(name: str, work: Callable[[], Any]) -> Any:
        gc.collect()
        started = time.process_time()
        result = work()
        spent = time.process_time() - started
        best[name] = min(best.get(name, spent), spent)
        return result

    def spool_with_inbox() -> tuple[Spool, Any]:
        spool = Spool(Path(tempfile.mkdtemp(prefix="bench-stages-")) / "s.db", max_bytes=1 << 34)
        for body in parts:
            spool.add_encoded(Encoded(OTLP_TRACES, body, genai_per_request, genai_per_request))
        return spool, spool.read_records(0, genai + 1)

    for _ in range(args.rounds):
        spool = Spool(Path(tempfile.mkdtemp(prefix="bench-stages-")) / "s.db", max_bytes=1 << 34)
        stages = Stages(settings, Router.from_settings(settings))
        stub = bench_serve.StubLabelStudio()
        project, _ = stub.ensure_project("b", "")
        delivery = Delivery(stub, spool, batch_size=settings.batch_size)  # type: ignore[arg-type]

        outlined = stage("outline", lambda: [outline_traces(b) for b in bodies])
        parts = stage("cut GenAI part", lambda o=outlined: [genai_spans(x).body for x in o])
        stage(
            "spool request",
            lambda p=parts, s=spool: [
                s.add_encoded(Encoded(OTLP_TRACES, b, genai_per_request, genai_per_request))
                for b in p
            ],
        )
        inbox = stage("read + decode", lambda s=spool: s.read_records(0, genai + 1))
        assert len(inbox.rows) == genai, (len(inbox.rows), genai)
        routed = stage(
            "route",
            lambda st=stages, i=inbox: [st.route(Joined(r, ())) for _, _, r in i.rows],
        )
        assert all(routed), "every GenAI span of the load is an interaction"
        tasks = stage(
            "shape", lambda r=routed, p=project.id: [task_for(x, layout, p) for _, x in r]
        )
        held = stage(
            "hand over",
            lambda d=delivery, t=tasks, i=inbox: d.hold(
                [(task, [row], 1) for task, (row, _, _) in zip(t, i.rows, strict=True)]
            ),
        )
        assert held == genai and spool.counts()["ready"] == 0
        stage("deliver", lambda d=delivery: d.deliver(everything=True))
        assert stub.imported == genai and delivery.held_count == 0
        assert spool.counts()["records"] == 0 and spool.delivered_count() == genai
        spool.close()

        stored_spool, stored_inbox = spool_with_inbox()
        stored_stub = bench_serve.StubLabelStudio()
        stored_stub.ensure_project("b", "")
        stored_delivery = Delivery(stored_stub, stored_spool, batch_size=settings.batch_size)  # type: ignore[arg-type]
        stored = stage(
            STORED + "spool tasks",
            lambda s=stored_spool, t=tasks, i=stored_inbox: s.add_tasks(
                t, [row for row, _, _ in i.rows]
            ),
        )
        assert stored == genai and stored_spool.counts()["records"] == 0
        stage(STORED + "deliver", lambda d=stored_delivery: d.deliver(everything=True))
        assert stored_stub.imported == genai and stored_spool.counts()["ready"] == 0
        stored_spool.close()

    ordinary = _without_genai(templates[0])
    ordinary_spans = sum(len(s.spans) for r in ordinary.resource_spans for s in r.scope_spans)
    ordinary_body = ordinary.SerializeToString()
    scan_s = outline_s = float("inf")
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.requests):
            genai_spans(ExportTraceServiceRequest.FromString(ordinary_body))
        scan_s = min(scan_s, time.process_time() - started)
        started = time.process_time()
        for _ in range(args.requests):
            request = outline_traces(ordinary_body)
            assert not may_hold_genai(True, ordinary_body)
            count_items(request)
        outline_s = min(outline_s, time.process_time() - started)

    print(
        f"{args.requests} requests of {bench_serve.SPANS_PER_REQUEST} spans "
        f"({genai_per_request} GenAI each), best of {args.rounds} rounds, CPU time:"
    )
    total = 0.0
    for name, spent in best.items():
        if name.startswith(STORED):
            continue
        total += spent
        print(
            f"  {name:<16} {spent / genai * 1e6:7.1f} µs per GenAI span"
            f"  {spent / spans * 1e6:6.2f} µs per span"
        )
    print(
        f"  {'total':<16} {total / genai * 1e6:7.1f} µs per GenAI span"
        f"  {total / spans * 1e6:6.2f} µs per span = {spans / total:,.0f} spans per CPU-second"
        " (before the servers' own work)"
    )
    print("while Label Studio fails, instead of hand over + deliver:")
    for name, spent in best.items():
        if name.startswith(STORED):
            print(
                f"  {name[len(STORED) :]:<16} {spent / genai * 1e6:7.1f} µs per GenAI span"
                f"  {spent / spans * 1e6:6.2f} µs per span"
            )
    per_span = args.requests * ordinary_spans
    print(
        f"a request of {ordinary_spans} spans without an LLM call: decoded whole and scanned "
        f"span by span {scan_s / per_span * 1e6:.2f} µs per span; outlined, counted and passed "
        f"over after one search of its body (what the receivers do) "
        f"{outline_s / per_span * 1e6:.2f} µs per span"
    )
    return 0


def _without_genai(body: bytes) -> Any:
    """The request `body` with its GenAI spans taken out."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from otel_labelstudio.receiver.otlp import span_records

    request = ExportTraceServiceRequest.FromString(body)
    genai = {(r.trace_id, r.span_id) for r in span_records(request).records}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            kept = [
                span
                for span in scope_spans.spans
                if (span.trace_id.hex(), span.span_id.hex()) not in genai
            ]
            del scope_spans.spans[:]
            scope_spans.spans.extend(kept)
    return request


if __name__ == "__main__":
    raise SystemExit(main())
