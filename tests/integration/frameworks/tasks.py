"""What the captured OTLP files become: the tasks the pipeline's stages make of them (read as
`replay` reads files, then assemble, extract, route, shape, as `replay --dry-run` does), with the
convention that read each one, normalised so they compare exactly from run to run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import scenarios as s

from otel_labelstudio.assemble import Assembler
from otel_labelstudio.config import Settings
from otel_labelstudio.model import SpanRecord
from otel_labelstudio.pipeline import Stages
from otel_labelstudio.receiver.replay import ReplayCount, records_from_files
from otel_labelstudio.routing import Router
from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for

# Run-dependent values become placeholders; the big prompt is named, not repeated (it is
# replaced only where it appears whole, so a cut prompt still shows).
_PLACEHOLDERS = {"trace_id": "<trace_id>", "span_id": "<span_id>", "latency_ms": "<latency_ms>"}


def settings(**overrides: Any) -> Settings:
    return Settings.load(
        {
            "url": "http://127.0.0.1:9",
            # Every span the conventions call an LLM call becomes a task, content or not.
            "routes": [
                {
                    "match": {},
                    "project": {"title": "frameworks", "shape": "auto"},
                    "include_without_content": True,
                }
            ],
            **overrides,
        },
        environ={},
    )


def normalise(task: dict[str, Any]) -> dict[str, Any]:
    task = json.loads(json.dumps(task).replace(json.dumps(s.BIG)[1:-1], "<BIG 20 KB PROMPT>"))
    task.pop("project", None)
    data = task["data"]
    for key, placeholder in _PLACEHOLDERS.items():
        if key in data:
            data[key] = placeholder
    return task


_LAYOUT = parse_label_config(default_label_config(Shape.AUTO))


def scenario_tasks(directory: Path, scenario: str) -> list[dict[str, Any]]:
    """`[{"convention": ..., "task": {...}}]`, one per LLM call, in the order the calls began."""
    paths = [
        path
        for path in (directory / f"{scenario}.traces.pb", directory / f"{scenario}.logs.pb")
        if path.exists()
    ]
    records = list(records_from_files(paths, None, ReplayCount()))
    assembler = Assembler(window_s=0.0)
    for record in sorted(records, key=_start):
        if isinstance(record, SpanRecord):
            assembler.add_span(record, 0.0)
        else:
            assembler.add_event(record, 0.0)
    config = settings()
    stages = Stages(config, Router.from_settings(config))
    found = []
    for joined in assembler.release(0.0, everything=True):
        routed = stages.route(joined)
        if routed is not None:
            _, interaction = routed
            task = task_for(interaction, _LAYOUT, 0)
            found.append(
                {"convention": interaction.convention, "task": normalise(dict(task.payload))}
            )
    return found


def _start(record: Any) -> int:
    return int(getattr(record, "start_time_unix_nano", 0) or getattr(record, "time_unix_nano", 0))
