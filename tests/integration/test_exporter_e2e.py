"""The in-process exporter end to end: the real LangChain instrumentation (Traceloop's
opentelemetry-instrumentation-langchain) on LangChain's fake models, the real SDK pipeline, and the
real Label Studio server started once for the session."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_labelstudio import LabelStudioSpanExporter
from otel_labelstudio.shaping import Shape, default_label_config

pytestmark = pytest.mark.labelstudio

REPO = Path(__file__).resolve().parents[2]

# LangChain's LabelStudioCallbackHandler's chat-mode config, as that handler creates it.
LANGCHAIN_CHAT_CONFIG = """
<View>
<View className="root">
     <Paragraphs name="dialogue"
               value="$prompt"
               layout="dialogue"
               textKey="content"
               nameKey="role"
               granularity="sentence"/>
  <Header value="Final response:"/>
    <TextArea name="response" toName="dialogue"
              maxSubmissions="1" editable="true"
              required="true"/>
</View>
<Header value="Rate the response:"/>
<Rating name="rating" toName="dialogue"/>
</View>
"""


# ... and its prompt-mode config.
LANGCHAIN_PROMPT_CONFIG = """
<View>
<Style>
    .prompt-box {
        background-color: white;
        border-radius: 10px;
        box-shadow: 0px 4px 6px rgba(0, 0, 0, 0.1);
        padding: 20px;
    }
</Style>
<View className="root">
    <View className="prompt-box">
        <Text name="prompt" value="$prompt"/>
    </View>
    <TextArea name="response" toName="prompt"
              maxSubmissions="1" editable="true"
              required="true"/>
</View>
<Header value="Rate the response:"/>
<Rating name="rating" toName="prompt"/>
</View>
"""


class Traced:
    """The shared instrumented provider with our exporter behind it for one test, and an
    in-memory copy of its spans to compare what Label Studio got with what was traced."""

    def __init__(self, switchboard: Any, exporter: LabelStudioSpanExporter) -> None:
        self.exporter = exporter
        self.memory = InMemorySpanExporter()
        self.processors = [SimpleSpanProcessor(self.memory), BatchSpanProcessor(exporter)]
        self.switchboard = switchboard
        self.switchboard.target = _Both(self.processors)

    def flush(self) -> bool:
        # The SDK's BatchSpanProcessor hands its spans to the exporter on force_flush but does
        # not flush the exporter itself: ask ours to deliver what it holds.
        return all(p.force_flush(30_000) for p in self.processors) and self.exporter.force_flush()

    def llm_spans(self) -> list[ReadableSpan]:
        return [
            s
            for s in self.memory.get_finished_spans()
            if "gen_ai.operation.name" in (s.attributes or {})
        ]

    def close(self) -> None:
        self.switchboard.target = None
        for p in self.processors:
            p.shutdown()


class _Both(SpanProcessor):
    def __init__(self, processors: list[SpanProcessor]) -> None:
        self.processors = processors

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for p in self.processors:
            p.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for p in self.processors:
            p.on_end(span)


@pytest.fixture
def traced(langchain_tracing: Any) -> Iterator[Callable[[LabelStudioSpanExporter], Traced]]:
    made: list[Traced] = []

    def make(exporter: LabelStudioSpanExporter) -> Traced:
        made.append(Traced(langchain_tracing, exporter))
        return made[-1]

    yield make
    for t in made:
        t.close()


def tasks_of(client: LabelStudio, project_title: str) -> list[Any]:
    projects = [p for p in client.projects.list(title=project_title) if p.title == project_title]
    assert len(projects) == 1, f"expected one project titled {project_title!r}, got {len(projects)}"
    return list(client.tasks.list(project=projects[0].id, fields="all"))


def prediction_texts(task: Any) -> list[tuple[str, str, str]]:
    return [
        (p.model_version, r["from_name"], r["value"]["text"][0])
        for p in task.predictions
        for r in p.result
    ]


@pytest.mark.parametrize("token_kind", ["personal_access_token", "legacy_token"])
def test_langchain_llm_calls_become_prompt_tasks(
    label_studio: Any,
    traced: Callable[[LabelStudioSpanExporter], Traced],
    unique_project_name: str,
    token_kind: str,
) -> None:
    exporter = LabelStudioSpanExporter(
        url=label_studio.url,
        api_key=getattr(label_studio, token_kind),
        project_name=unique_project_name,
        mode="prompt",
    )
    t = traced(exporter)
    llm = FakeListLLM(responses=["Paris.", "Four."])
    assert llm.invoke("Capital of France?") == "Paris."
    assert llm.invoke("2 + 2?") == "Four."
    assert t.flush()

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    tasks = sorted(tasks_of(client, unique_project_name), key=lambda task: task.id)
    spans = sorted(t.llm_spans(), key=lambda s: s.start_time or 0)
    assert len(spans) == 2
    assert [task.data["prompt"] for task in tasks] == ["Capital of France?", "2 + 2?"]
    assert [prediction_texts(task) for task in tasks] == [
        [("unknown", "response", "Paris.")],
        [("unknown", "response", "Four.")],
    ]
    for task, span in zip(tasks, spans, strict=True):
        assert task.data["trace_id"] == format(span.context.trace_id, "032x")
        assert task.data["span_id"] == format(span.context.span_id, "016x")
        assert task.data["service"] == "e2e-app"
        assert task.data["operation"] == "text_completion"
        assert task.data["provider"] == "langchain"
        assert task.data["latency_ms"] >= 0


def test_chat_model_with_system_becomes_dialogue_task(
    label_studio: Any, traced: Callable[[LabelStudioSpanExporter], Traced], unique_project_name: str
) -> None:
    exporter = LabelStudioSpanExporter(
        url=label_studio.url,
        api_key=label_studio.personal_access_token,
        project_name=unique_project_name,
        mode="chat",
    )
    t = traced(exporter)
    chat = FakeListChatModel(responses=["Hello! How can I help?"])
    chat.invoke([SystemMessage("You are terse."), HumanMessage("Hi there")])
    assert t.flush()

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    (task,) = tasks_of(client, unique_project_name)
    assert task.data["prompt"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi there"},
    ]
    assert prediction_texts(task) == [("unknown", "response", "Hello! How can I help?")]
    project = client.projects.get(id=task.project)
    assert project.label_config.strip() == default_label_config(Shape.DIALOGUE).strip()


@pytest.mark.parametrize(
    ("config", "expected_prompt"),
    [
        (LANGCHAIN_CHAT_CONFIG, [{"role": "user", "content": "Help me?"}]),
        (LANGCHAIN_PROMPT_CONFIG, "Help me?"),
    ],
    ids=["chat", "prompt"],
)
def test_existing_project_by_id_with_langchain_handler_config(
    label_studio: Any,
    traced: Callable[[LabelStudioSpanExporter], Traced],
    unique_project_name: str,
    config: str,
    expected_prompt: object,
) -> None:
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    project = client.projects.create(title=unique_project_name, label_config=config)
    exporter = LabelStudioSpanExporter(
        url=label_studio.url, api_key=label_studio.personal_access_token, project_id=project.id
    )
    t = traced(exporter)
    FakeListChatModel(responses=["Sure."]).invoke([HumanMessage("Help me?")])
    assert t.flush()
    (task,) = tasks_of(client, unique_project_name)
    assert task.data["prompt"] == expected_prompt
    assert prediction_texts(task) == [("unknown", "response", "Sure.")]


def test_custom_config_with_extra_controls(
    label_studio: Any, traced: Callable[[LabelStudioSpanExporter], Traced], unique_project_name: str
) -> None:
    config = """<View>
      <Text name="question" value="$question"/>
      <Text name="where" value="$service"/>
      <Choices name="verdict" toName="question">
        <Choice value="good"/><Choice value="bad"/>
      </Choices>
      <TextArea name="corrected" toName="question" editable="true"/>
      <TextArea name="notes" toName="question"/>
      <Rating name="stars" toName="question"/>
    </View>"""
    exporter = LabelStudioSpanExporter(
        url=label_studio.url,
        api_key=label_studio.personal_access_token,
        project_name=unique_project_name,
        project_config=config,
    )
    t = traced(exporter)
    FakeListLLM(responses=["42"]).invoke("Meaning of life?")
    assert t.flush()
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    (task,) = tasks_of(client, unique_project_name)
    assert task.data["question"] == "Meaning of life?"
    assert task.data["service"] == "e2e-app"
    assert prediction_texts(task) == [("unknown", "corrected", "42")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "expected"),
    [("wrong_token", "rejected the API key (401"), ("unreachable", "cannot connect")],
)
def test_bad_token_or_url_logs_one_clear_error_and_app_keeps_running(
    label_studio: Any,
    traced: Callable[[LabelStudioSpanExporter], Traced],
    unique_project_name: str,
    caplog: pytest.LogCaptureFixture,
    case: str,
    expected: str,
) -> None:
    secret = "not-a-real-token-0123456789"
    url = label_studio.url if case == "wrong_token" else f"http://127.0.0.1:{free_port()}"
    exporter = LabelStudioSpanExporter(url=url, api_key=secret, project_name=unique_project_name)
    t = traced(exporter)
    caplog.set_level(logging.DEBUG, logger="otel_labelstudio")
    llm = FakeListLLM(responses=["a", "b", "c"])
    started = time.perf_counter()
    assert [llm.invoke(q) for q in ("1", "2", "3")] == ["a", "b", "c"]
    assert time.perf_counter() - started < 5
    assert all(p.force_flush() for p in t.processors)
    assert exporter.force_flush(10_000) is False  # nothing could be delivered
    assert exporter.force_flush(10_000) is False
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert expected in errors[0].getMessage()
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert exporter.pipeline.stats()["pending"] == 3  # kept, not lost


def test_zero_code_otel_traces_exporter_under_opentelemetry_instrument(
    label_studio: Any, unique_project_name: str
) -> None:
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "labelstudio",
        "OTEL_METRICS_EXPORTER": "none",
        # Both exporters by entry point: they must share one pipeline and shut down cleanly.
        "OTEL_LOGS_EXPORTER": "labelstudio",
        "OTEL_SERVICE_NAME": "zero-code-app",
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.personal_access_token,
        "LABEL_STUDIO_PROJECT_NAME": unique_project_name,
        "LABEL_STUDIO_MODE": "chat",
    }
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bin_dir / "opentelemetry-instrument"),
            sys.executable,
            "-m",
            "otel_labelstudio.demo.sample_app",
            "chat",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not delivered" not in result.stderr, result.stderr[-3000:]
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    tasks = tasks_of(client, unique_project_name)
    assert len(tasks) == 3
    assert {task.data["service"] for task in tasks} == {"zero-code-app"}
    first_turns = sorted(task.data["prompt"][1]["content"] for task in tasks)
    assert first_turns == [
        "Can I export my data as CSV?",
        "How do I reset my password?",
        "My invoice shows two charges this month.",
    ]
    assert all(len(prediction_texts(task)) == 1 for task in tasks)
