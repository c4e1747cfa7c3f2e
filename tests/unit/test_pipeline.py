"""The pipeline's worker with a scripted Label Studio (the seam is labelstudio.LabelStudio)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context

from otel_labelstudio.config import Settings
from otel_labelstudio.errors import LabelStudioUnavailable
from otel_labelstudio.labelstudio import Imported, Project
from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.pipeline import Pipeline, Stages, acquire_shared, release_shared
from otel_labelstudio.routing import Router
from otel_labelstudio.shaping import Shape, default_label_config
from otel_labelstudio.spool import Spool

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

    def import_raw(self, project_id: int, tasks: Sequence[str]) -> Imported:
        self._call()
        self.imported.extend(json.loads(t) for t in tasks)
        return Imported(list(range(len(tasks))), None)

    def find_span_keys(self, project_id: int, keys: Sequence[str]) -> dict[str, int]:
        self._call()
        have = {f"{t['data']['trace_id']}:{t['data']['span_id']}" for t in self.imported}
        return {k: 1 for k in keys if k in have}

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


def make(scripted: ScriptedLabelStudio, spool: Spool | None = None, **settings: Any) -> Pipeline:
    values = {"api_key": "k", "project_name": "P", "join_window_s": 60.0, **settings}
    return Pipeline(Settings.load(values, environ={}), label_studio=scripted, spool=spool)  # type: ignore[arg-type]


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
    pipeline = make(scripted, max_queue_size=3)
    with pipeline._queue_lock:
        pipeline._queued_items = 2  # as if two items were waiting for the worker
    assert not pipeline.submit([llm_span(2), llm_span(3)], same)
    assert pipeline.stats()["dropped_queue_full"] == 2
    with pipeline._queue_lock:
        pipeline._queued_items = 0
    assert pipeline.submit([llm_span(2), llm_span(3)], same)
    assert pipeline.shutdown(5)
    assert len(scripted.imported) == 2


def test_spool_bound_drops_for_the_exporter_and_refuses_for_the_service(
    scripted: ScriptedLabelStudio,
) -> None:
    scripted.down = True
    spool = Spool(None, max_bytes=4_000)
    pipeline = make(scripted, spool=spool)
    spans = [llm_span(i) for i in range(40)]
    accepted = sum(pipeline.accept([span]) for span in spans[:20])
    assert 0 < accepted < 20
    assert pipeline.stats()["refused_spool_full"] == 20 - accepted
    assert spool.bytes_used <= 4_000
    pipeline.submit(spans[20:], same)
    assert not pipeline.force_flush(2)
    assert pipeline.stats()["dropped_spool_full"] == 20
    scripted.down = False
    assert pipeline.force_flush(10)
    assert len(scripted.imported) == accepted
    pipeline.shutdown(5)


def test_what_was_accepted_survives_the_process_and_is_delivered_once(
    scripted: ScriptedLabelStudio, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    scripted.down = True
    first = make(scripted, spool=Spool(path, max_bytes=10_000_000))
    assert first.accept([llm_span(i) for i in range(6)])
    assert not first.force_flush(2)  # Label Studio down: the interactions wait in the spool
    assert not first.shutdown(2)
    scripted.down = False
    second = make(scripted, spool=Spool(path, max_bytes=10_000_000))
    assert second.accept([llm_span(5)])  # a sender's retry of one already accepted
    assert second.force_flush(10)
    prompts = sorted(t["data"]["prompt"] for t in scripted.imported)
    assert prompts == sorted(f"q{i}" for i in range(6))
    stats = second.stats()
    assert stats.get("duplicate_interaction", 0) + stats.get("assembler_duplicate_span", 0) == 1
    second.shutdown(5)
    third = make(scripted, spool=Spool(path, max_bytes=10_000_000))
    assert third.accept([llm_span(3)])  # long after delivery: the ledger knows it
    assert third.force_flush(10)
    assert len(scripted.imported) == 6
    third.shutdown(5)


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


def stages_for(tmp_path: Path | None = None, routes: str | None = None) -> Stages:
    """The pipeline's stages for settings with an API key and, when given, these routes."""
    options: dict[str, Any] = {"api_key": "k"}
    if tmp_path is not None and routes is not None:
        options["config"] = tmp_path / "routes.yaml"
        options["config"].write_text(routes)
    settings = Settings.load(options, environ={})
    return Stages(settings, Router.from_settings(settings))


def test_stages_skip_or_label_failed_calls_per_route(tmp_path: Any) -> None:
    from otel_labelstudio.assemble import Joined

    stages = stages_for(
        tmp_path,
        "routes:\n"
        "  - {match: {service: strict}, project: {title: S}, on_error: skip}\n"
        "  - {match: {}, project: {title: L}}\n",
    )

    def failed(service: str) -> Joined:
        return Joined(
            dataclasses.replace(
                llm_span(len(service)),
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


def test_a_span_no_parser_survives_costs_only_itself(
    scripted: ScriptedLabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_labelstudio import conventions

    real = conventions.extract

    def fragile(span: SpanRecord, events: Sequence[Any] = ()) -> Any:
        if span.span_id == f"{2:016x}":
            raise RecursionError("maximum recursion depth exceeded")
        return real(span, events)

    monkeypatch.setattr(conventions, "extract", fragile)
    pipeline = make(scripted)
    assert pipeline.accept([llm_span(i) for i in range(5)])
    assert pipeline.force_flush(10)
    assert sorted(t["data"]["prompt"] for t in scripted.imported) == ["q0", "q1", "q3", "q4"]
    assert pipeline.stats()["dropped_unprocessable"] == 1
    assert pipeline.spool.counts()["records"] == 0  # its record is not kept forever either
    pipeline.shutdown(5)


def test_one_call_traced_by_two_instrumentations_is_one_interaction() -> None:
    from otel_labelstudio.assemble import Joined

    stages = stages_for()

    def call(span: int, start: int, end: int, question: str = "q") -> Joined:
        record = dataclasses.replace(
            llm_span(span), start_time_unix_nano=start, end_time_unix_nano=end
        )
        attributes = dict(record.attributes)
        attributes["gen_ai.input.messages"] = messages("user", question)
        return Joined(dataclasses.replace(record, attributes=attributes))

    openinference_style = Joined(
        SpanRecord(
            trace_id="1" * 32,  # each instrumentation starts its own trace
            span_id=f"{2:016x}",
            name="ChatModel",
            start_time_unix_nano=110,
            end_time_unix_nano=190,
            scope="openinference.instrumentation.langchain",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "q",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "a",
            },
        )
    )
    assert stages.route(call(1, 100, 200)) is not None
    assert stages.route(openinference_style) is None  # the same call, nested in time
    assert stages.route(call(3, 300, 400)) is not None  # the same text, asked again later
    assert stages.route(call(4, 350, 450, question="other")) is not None
    # One instrumentation's calls are never merged, however alike (a load generator).
    assert stages.route(call(5, 300, 400)) is not None
    assert stages.counts["same_call_described_twice"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forking_while_the_spool_is_busy_never_hangs_the_child(
    scripted: ScriptedLabelStudio, tmp_path: Path
) -> None:
    import threading
    import time

    pipeline = make(scripted, spool=Spool(tmp_path / "busy.db", max_bytes=100_000_000))
    stop = threading.Event()

    def busy() -> None:
        i = 100
        while not stop.is_set():
            pipeline.accept([llm_span(i + n) for n in range(50)])
            i += 50

    writer = threading.Thread(target=busy)
    writer.start()
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = 0 if pipeline.accept([llm_span(1)]) else 1
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    pytest.fail("the forked child hung")
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        writer.join()
        pipeline.shutdown(5)


def test_a_route_can_give_each_conversation_turn_its_whole_history(tmp_path: Path) -> None:
    from otel_labelstudio.assemble import Joined

    stages = stages_for(
        tmp_path,
        "routes:\n"
        "  - {match: {service: chat}, project: {title: C, shape: dialogue},"
        " conversation: history}\n"
        "  - {match: {}, project: {title: Other}}\n",
    )

    def turn(span: int, question: str, answer: str, service: str = "chat") -> Joined:
        record = llm_span(span)
        attributes = {
            **record.attributes,
            "gen_ai.conversation.id": "conv-1",
            "gen_ai.input.messages": messages("user", question),
            "gen_ai.output.messages": messages("assistant", answer),
        }
        return Joined(
            dataclasses.replace(
                record,
                attributes=attributes,
                start_time_unix_nano=span * 10,
                end_time_unix_nano=span * 10 + 1,
                resource={"service.name": service},
            )
        )

    def said(joined: Joined) -> list[tuple[str, str]]:
        routed = stages.route(joined)
        assert routed is not None
        return [(m.role, m.content) for m in routed[1].input]

    assert said(turn(1, "Hi, I am Ada.", "Hello Ada!")) == [("user", "Hi, I am Ada.")]
    assert said(turn(2, "What is my name?", "Ada.")) == [
        ("user", "Hi, I am Ada."),
        ("assistant", "Hello Ada!"),
        ("user", "What is my name?"),
    ]
    # A framework that resends the whole history is left as it is.
    full = turn(3, "Thanks", "You're welcome")
    full.span.attributes["gen_ai.input.messages"] = json.dumps(
        [
            {"role": role, "parts": [{"type": "text", "content": text}]}
            for role, text in [
                ("user", "Hi, I am Ada."),
                ("assistant", "Hello Ada!"),
                ("user", "What is my name?"),
                ("assistant", "Ada."),
                ("user", "Thanks"),
            ]
        ]
    )
    assert len(said(full)) == 5
    # Routes without the option, and calls without a conversation id, are as sent.
    assert said(turn(4, "Unrelated", "Sure", service="other")) == [("user", "Unrelated")]


def test_a_span_waits_for_its_events_while_the_worker_cannot_read_them(
    scripted: ScriptedLabelStudio,
) -> None:
    """Reading the spool pauses while Label Studio cannot take tasks (memory stays flat); a span
    read before the pause must not close its window on events still unread."""
    import time

    scripted.down = True
    pipeline = make(scripted, join_window_s=0.5, max_backoff_s=0.5)
    first = llm_span(1)
    second = dataclasses.replace(
        llm_span(2),
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": messages("user", "q2"),
        },
    )
    choice = EventRecord(
        name="gen_ai.choice",
        time_unix_nano=3,
        attributes={},
        body={"index": 0, "message": {"content": "the answer to q2"}},
        trace_id=TRACE,
        span_id=second.span_id,
    )
    assert pipeline.accept([first])
    time.sleep(0.3)
    assert pipeline.accept([second])  # read while the first still waits for its window
    time.sleep(0.6)  # the first is released, finds no project: reading pauses
    assert pipeline.accept([choice])
    time.sleep(0.6)  # the second's window has run out in the meantime
    scripted.down = False
    assert pipeline.force_flush(20)
    answers = {
        t["data"]["span_id"]: [r["value"]["text"] for p in t["predictions"] for r in p["result"]]
        for t in scripted.imported
    }
    assert answers[second.span_id] == [["the answer to q2"]]
    pipeline.shutdown(5)


_KILLED_MID_IMPORT = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_pipeline import ScriptedLabelStudio, llm_span, make
from otel_labelstudio.spool import Spool

class KilledMidImport(ScriptedLabelStudio):
    def import_raw(self, project_id, tasks):
        spool = pipeline.spool
        # Handed over in memory: marked in flight, not stored, every record still in the inbox;
        # else exit 4 (an exception here would only send the batch the stored tasks' way).
        if spool.in_flight() or len(spool.unsure()) != 6 or spool.counts()["ready"]:
            os._exit(4)
        if spool.counts()["spans"] != 6:
            os._exit(5)
        if sys.argv[2] == "applied":  # Label Studio has the tasks; the answer never arrives
            Path(sys.argv[1] + ".imported").write_text(json.dumps([json.loads(t) for t in tasks]))
        os.kill(os.getpid(), 9)

pipeline = make(KilledMidImport(), spool=Spool(Path(sys.argv[1]), max_bytes=10**7))
assert pipeline.accept([llm_span(i) for i in range(6)])
pipeline.force_flush(10)
os._exit(3)  # not reached: the import kills the process
"""


@pytest.mark.parametrize("applied", [True, False], ids=["import-applied", "import-not-sent"])
def test_killed_between_marking_in_flight_and_ledgering_delivers_once_at_the_next_start(
    scripted: ScriptedLabelStudio, tmp_path: Path, applied: bool
) -> None:
    path = tmp_path / "spool.db"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_MID_IMPORT,
            str(path),
            "applied" if applied else "not-sent",
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    if applied:
        scripted.imported = json.loads(Path(f"{path}.imported").read_text())
    spool = Spool(path, max_bytes=10_000_000)
    assert spool.recovered_in_flight == 6 and spool.counts()["spans"] == 6
    second = make(scripted, spool=spool)
    assert second.force_flush(10)
    prompts = sorted(t["data"]["prompt"] for t in scripted.imported)
    assert prompts == [f"q{i}" for i in range(6)]  # each once
    stats = second.stats()
    assert stats.get("already_in_label_studio", 0) == (6 if applied else 0)
    assert (stats["pending"], stats["spooled_records"]) == (0, 0)
    assert spool.unsure() == [] and spool.delivered_count() == 6
    second.shutdown(5)


def test_when_label_studio_fails_held_tasks_are_stored_and_memory_stays_bounded(
    scripted: ScriptedLabelStudio,
) -> None:
    pipeline = make(scripted, batch_size=2, max_backoff_s=60.0)
    assert pipeline.accept([llm_span(0)])
    assert pipeline.force_flush(10)  # the project is known; delivery keeps up
    most_held = 0
    real_hold = pipeline.delivery.hold

    def hold(tasks: Sequence[tuple[Any, Sequence[int], int]]) -> int:
        nonlocal most_held
        taken = real_hold(tasks)
        most_held = max(most_held, pipeline.delivery.held_count)
        return taken

    pipeline.delivery.hold = hold  # type: ignore[method-assign]
    scripted.down = True
    assert pipeline.accept([llm_span(i) for i in range(1, 41)])
    assert not pipeline.force_flush(3)
    assert 0 < most_held <= pipeline.delivery.held_limit == 6
    stats = pipeline.stats()
    assert pipeline.delivery.held_count == 0  # what waits for Label Studio waits on disk
    assert pipeline.spool.counts()["ready"] == 40 and stats["pending"] == 40
    assert stats["spooled_records"] == 0  # stored tasks: their records are done with
    scripted.down = False
    assert pipeline.force_flush(10)
    assert sorted(t["data"]["prompt"] for t in scripted.imported) == sorted(
        f"q{i}" for i in range(41)
    )
    pipeline.shutdown(5)


def test_a_flush_hands_everything_over_at_the_pace_delivery_takes_it(
    scripted: ScriptedLabelStudio,
) -> None:
    pipeline = make(scripted, batch_size=2)
    stored = 0
    real_add = pipeline.spool.add_tasks

    def add_tasks(tasks: Sequence[Any], *args: Any, **kwargs: Any) -> int:
        nonlocal stored
        stored += len(tasks)
        return real_add(tasks, *args, **kwargs)

    pipeline.spool.add_tasks = add_tasks  # type: ignore[method-assign]
    assert pipeline.accept([llm_span(i) for i in range(30)])  # five times delivery's room
    assert pipeline.force_flush(10)
    assert len(scripted.imported) == 30 and stored == 0  # never stored
    assert pipeline.stats()["delivered"] == 30
    pipeline.shutdown(5)


def test_a_flush_during_an_outage_asks_label_studio_once_per_project_not_per_interaction(
    scripted: ScriptedLabelStudio,
) -> None:
    scripted.down = True
    pipeline = make(scripted)
    assert pipeline.accept([llm_span(i) for i in range(1_500)])
    assert not pipeline.force_flush(20)
    asked = len(scripted.suppressed)  # one entry per call to Label Studio
    assert 0 < asked <= 10, asked
    assert pipeline.stats()["pending"] == 1_500
    pipeline.shutdown(5)
