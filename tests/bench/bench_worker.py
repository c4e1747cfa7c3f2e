"""What one interaction costs our worker thread, stage by stage, in CPU time.

The worker shares the application's interpreter (and its GIL), so its CPU per task is what the
application can feel. Spans come from the real LangChain instrumentation on a fake LLM; the
import goes to a real Label Studio (embedded, started here, unless --url/--api-key are given).

    .venv/bin/python tests/bench/bench_worker.py [--spans N] [--batch N]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake import FakeListLLM
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_labelstudio import conventions
from otel_labelstudio.embedded import EmbeddedLabelStudio
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.sdk_records import span_record
from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for


def cpu_us_per_item(label: str, items: int, work: Callable[[], Any]) -> Any:
    # The bench holds thousands of spans at once, which a running worker never does: keep the
    # garbage collector from charging their scans to whichever stage happens to trigger it.
    gc.collect()
    gc.freeze()
    started = time.process_time()
    result = work()
    print(f"  {label:<34} {(time.process_time() - started) / items * 1e6:8.1f} µs/interaction")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500, help="tasks per import request")
    parser.add_argument("--url")
    parser.add_argument("--api-key")
    args = parser.parse_args()

    server = None
    if args.url is None:
        server = EmbeddedLabelStudio().start()
        url, key = server.url, server.personal_access_token
    else:
        url, key = args.url, args.api_key
    try:
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        LangchainInstrumentor().instrument(tracer_provider=provider)
        answer = "The capital of Australia is Canberra, not Sydney, since 1913."
        llm = FakeListLLM(responses=[answer] * args.spans)
        for i in range(args.spans):
            llm.invoke(f"Question {i}: what is the capital of Australia, and since when?")
        spans = memory.get_finished_spans()
        n = len(spans)
        label_studio = LabelStudio(url, key)
        project, _ = label_studio.ensure_project(
            f"bench-worker-{int(time.time())}", default_label_config(Shape.PROMPT)
        )
        layout = parse_label_config(project.label_config)
        label_studio.get_project(project.id)  # connect (and import the SDK) before timing

        print(f"{n} LLM calls (LangChain FakeListLLM, Traceloop instrumentation), CPU time:")
        records = cpu_us_per_item(
            "span_record (SDK span → record)", n, lambda: [span_record(s) for s in spans]
        )
        found = cpu_us_per_item(
            "conventions.extract", n, lambda: [conventions.extract(r, ()) for r in records]
        )
        payloads = cpu_us_per_item(
            "shaping.task_for",
            n,
            lambda: [task_for(i, layout, project.id).payload for i in found if i is not None],
        )

        def import_all() -> int:
            ids = 0
            for start in range(0, len(payloads), args.batch):
                ids += len(
                    label_studio.import_tasks(project.id, payloads[start : start + args.batch])
                )
            return ids

        wall = time.perf_counter()
        imported = cpu_us_per_item(f"import ({args.batch} per request)", n, import_all)
        wall = time.perf_counter() - wall
        print(f"  imported {imported}/{n} tasks; {n / wall:,.0f} tasks/s wall for the import stage")
        assert imported == n, "not every task was imported"
        label_studio.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
