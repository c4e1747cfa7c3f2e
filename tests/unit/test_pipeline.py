"""The pipeline's worker with a scripted Label Studio (the seam is labelstudio.LabelStudio)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry import context as otel_context

from otel_labelstudio.config import Settings
from otel_labelstudio.errors import LabelStudioUnavailable
from otel_labelstudio.labelstudio import Project
from otel_labelstudio.model import SpanRecord
from otel_labelstudio.pipeline import Pipeline, acquire_shared, release_shared
from otel_labelstudio.shaping import Shape, default_label_config

TRACE = "0af7651916cd43dd8448eb211c80319c"


class ScriptedLabelStudio:
    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.down = False
        self.imported: list[Mapping[str, Any]] = []
        self.created: list[str] = []
        self.suppressed: list[bool] = []

    def ensure_project(self, title: str, label_config: str) -> tuple[Project, bool]:
        self._call()
        self.created.append(title)
        return Project(id=1, title=title, label_config=label_config), True

    def get_project(self, project_id: int) -> Project:
        self._call()
        return Project(id=project_id, title="x", label_config=default_label_config(Shape.PROMPT))

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        self._call()
        self.imported.extend(tasks)
        return list(range(len(tasks)))

    def _call(self) -> None:
        self.suppressed.append(
            bool(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY))
        )
        if self.down:
            raise LabelStudioUnavailable("cannot connect to Label Studio")

    def forget_connections(self) -> None:
        pass

    def close(self) -> None:
        pass


def messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def llm_span(i: int) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=f"{i:016x}",
        name="chat",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": messages("user", f"q{i}"),
            "gen_ai.output.messages": messages("assistant", "a"),
        },
    )


def same(item: Any) -> Any:
    return item


@pytest.fixture
def scripted() -> ScriptedLabelStudio:
    return ScriptedLabelStudio()


def make(scripted: ScriptedLabelStudio, **settings: Any) -> Pipeline:
    values = {"api_key": "k", "project_name": "P", "join_window_s": 60.0, **settings}
    return Pipeline(Settings.load(values, environ={}), label_studio=scripted)  # type: ignore[arg-type]


def test_flush_delivers_in_one_batch_with_instrumentation_suppressed(
    scripted: ScriptedLabelStudio,
) -> None:
    pipeline = make(scripted)
    assert pipeline.submit([llm_span(i) for i in range(5)], same)
    assert pipeline.force_flush(10)
    assert [t["data"]["prompt"] for t in scripted.imported] == [f"q{i}" for i in range(5)]
    assert scripted.created == ["P"]
    assert scripted.suppressed and all(scripted.suppressed)
    assert pipeline.stats()["delivered"] == 5
    assert pipeline.shutdown(10)


def test_queue_bound_drops_and_counts(scripted: ScriptedLabelStudio) -> None:
    scripted.down = True
    pipeline = make(scripted, max_queue_size=3)
    assert pipeline.submit([llm_span(0), llm_span(1)], same)
    assert not pipeline.submit([llm_span(2), llm_span(3)], same)
    assert pipeline.stats()["dropped_queue_full"] == 2
    assert not pipeline.force_flush(5)
    assert not pipeline.shutdown(5)


def test_unreadable_items_cost_nothing_else(scripted: ScriptedLabelStudio) -> None:
    def adapt(item: Any) -> Any:
        if item == "bad":
            raise ValueError("malformed")
        return item

    pipeline = make(scripted)
    pipeline.submit([llm_span(0), "bad", llm_span(1)], adapt)
    assert pipeline.force_flush(10)
    assert len(scripted.imported) == 2
    assert pipeline.stats()["dropped_unreadable"] == 1
    pipeline.shutdown(5)


def test_kept_while_down_then_delivered(scripted: ScriptedLabelStudio) -> None:
    scripted.down = True
    pipeline = make(scripted)
    pipeline.submit([llm_span(0)], same)
    assert not pipeline.force_flush(5)
    assert pipeline.stats()["pending"] == 1
    scripted.down = False
    assert pipeline.force_flush(5)
    assert len(scripted.imported) == 1
    pipeline.shutdown(5)


def test_exporters_with_equal_settings_share_until_the_last_release() -> None:
    settings = Settings.load({"api_key": "k", "url": "http://127.0.0.1:1"}, environ={})
    first = acquire_shared(settings)
    second = acquire_shared(
        Settings.load({"api_key": "k", "url": "http://127.0.0.1:1"}, environ={})
    )
    assert first is second
    assert release_shared(first, 1)  # one user left: still running
    assert first._thread.is_alive()
    release_shared(second, 1)
    assert not first._thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_worker(scripted: ScriptedLabelStudio) -> None:
    pipeline = make(scripted)
    pid = os.fork()
    if pid == 0:  # child: must deliver with a worker of its own
        code = 1
        try:
            pipeline.submit([llm_span(7)], same)
            ok = pipeline.force_flush(10) and scripted.imported[-1]["data"]["prompt"] == "q7"
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert scripted.imported == []  # the child's import happened in the child only
    pipeline.shutdown(5)


def test_stages_skip_or_label_failed_calls_per_route(tmp_path: Any) -> None:
    from otel_labelstudio.assemble import Joined
    from otel_labelstudio.pipeline import Stages
    from otel_labelstudio.routing import Router

    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        "  - {match: {service: strict}, project: {title: S}, on_error: skip}\n"
        "  - {match: {}, project: {title: L}}\n"
    )
    settings = Settings.load({"config": path, "api_key": "k"}, environ={})
    stages = Stages(settings, Router.from_settings(settings))

    def failed(service: str) -> Joined:
        return Joined(
            dataclasses.replace(
                llm_span(1),
                status_code="ERROR",
                status_message="rate limited",
                resource={"service.name": service},
            )
        )

    assert stages.route(failed("strict")) is None
    assert stages.counts["failed_call_skipped"] == 1
    routed = stages.route(failed("lenient"))
    assert routed is not None
    destination, interaction = routed
    assert destination.project.title == "L" and interaction.error == "rate limited"
