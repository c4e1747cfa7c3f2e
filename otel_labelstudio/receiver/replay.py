"""`otel-labelstudio replay`: OTLP files through the same pipeline, to backfill old traces or,
with `--dry-run`, to see which task each span would become and where it would go."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from otel_labelstudio.assemble import Assembler
from otel_labelstudio.config import Settings
from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.pipeline import Pipeline, Stages
from otel_labelstudio.receiver.files import read_requests
from otel_labelstudio.receiver.otlp import event_records, span_records
from otel_labelstudio.routing import ProjectRef, Router
from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for

__all__ = ["ReplayCount", "preview", "records_from_files", "replay"]

Signal = Literal["traces", "logs"]


class ReplayCount:
    def __init__(self) -> None:
        self.requests = 0
        self.received = 0
        self.records = 0
        self.rejected = 0


def records_from_files(
    paths: Iterable[Path],
    signal: Signal | None,
    count: ReplayCount,
    on_file_done: Callable[[Path], None] | None = None,
) -> Iterator[SpanRecord | EventRecord]:
    """GenAI records from OTLP files, request by request (a file is never read whole)."""
    for path in paths:
        for kind, request in read_requests(path, signal):
            decoded = span_records(request) if kind == "traces" else event_records(request)  # type: ignore[arg-type]
            count.requests += 1
            count.received += decoded.received
            count.rejected += decoded.rejected
            count.records += len(decoded.records)
            yield from decoded.records
        if on_file_done is not None:
            on_file_done(path)


def replay(
    settings: Settings, records: Iterable[SpanRecord | EventRecord], *, timeout_s: float = 600
) -> tuple[bool, dict[str, int]]:
    """Into Label Studio, through the full pipeline (batched, retried, each span once)."""
    pipeline = Pipeline(settings)
    chunk: list[SpanRecord | EventRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= 512:
            _submit(pipeline, chunk)
            chunk = []
    _submit(pipeline, chunk)
    delivered = pipeline.shutdown(timeout_s)
    return delivered, pipeline.stats()


def _submit(pipeline: Pipeline, chunk: list[SpanRecord | EventRecord]) -> None:
    # A file is not a sender that can retry: wait for room in the spool instead of dropping.
    while chunk and not pipeline.accept(chunk):
        pipeline.counts.pop("refused_spool_full", None)
        time.sleep(0.05)


def preview(
    settings: Settings, records: Iterable[SpanRecord | EventRecord]
) -> Iterator[dict[str, Any]]:
    """What `replay` would import, without touching Label Studio: one JSON-able object per task,
    `{"project": {...}, "data": {...}, "predictions": [...]}`. A project given by id is shaped
    with the built-in auto config (its real config lives in Label Studio)."""
    stages = Stages(settings, Router.from_settings(settings))
    assembler = Assembler(window_s=0.0)
    for record in records:
        if isinstance(record, SpanRecord):
            assembler.add_span(record, 0.0)
        else:
            assembler.add_event(record, 0.0)
    layouts: dict[str, Any] = {}
    for joined in assembler.release(0.0, everything=True):
        routed = stages.route(joined)
        if routed is None:
            continue
        destination, interaction = routed
        config = destination.project.label_config or default_label_config(Shape.AUTO)
        layout = layouts.get(config)
        if layout is None:
            layout = layouts[config] = parse_label_config(config)
        task = task_for(
            interaction, layout, destination.project.id or 0, trace_link=settings.trace_link
        )
        yield {"project": _describe(destination.project, destination.route), **task.payload}


def _describe(project: ProjectRef, route: str) -> dict[str, Any]:
    described: dict[str, Any] = {"route": route, "shape": project.shape.value}
    if project.id is not None:
        described["id"] = project.id
    else:
        described["title"] = project.title
    return described
