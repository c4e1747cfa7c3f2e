"""Routes, sampling, rate limits and redaction, end to end: real SDK spans through our exporter,
configured by a YAML file, into several projects of the real Label Studio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_labelstudio import LabelStudioSpanExporter
from otel_labelstudio.routing import sampled

pytestmark = pytest.mark.labelstudio

SECRETS = {
    "email": "jane.doe@example.org",
    "openai key": "sk-proj-Abc123Def456Ghi789Jkl012Mno345",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZw",
    "card": "4111 1111 1111 1111",
    "custom rule": "ACME-123456",
}


def messages(role: str, *texts: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": t}]} for t in texts])


class App:
    """One service: a TracerProvider with our exporter (all exporters built from the same
    config share one pipeline)."""

    def __init__(self, service: str, config: Path) -> None:
        self.exporter = LabelStudioSpanExporter(config=str(config))
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(
            BatchSpanProcessor(self.exporter, max_queue_size=4096, max_export_batch_size=512)
        )
        self.tracer = self.provider.get_tracer("app")
        self.trace_ids: list[str] = []

    def call(
        self,
        prompt: str,
        answer: str,
        *,
        model: str = "gpt-4o-mini",
        provider: str = "openai",
        operation: str = "chat",
        history: tuple[str, ...] = (),
    ) -> None:
        with self.tracer.start_as_current_span(f"{operation} {model}") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model,
                    "gen_ai.input.messages": messages("user", *history, prompt),
                    "gen_ai.output.messages": messages("assistant", answer),
                }
            )
            self.trace_ids.append(format(span.get_span_context().trace_id, "032x"))

    def flush(self) -> None:
        assert self.provider.force_flush(30_000)


@pytest.fixture
def config(tmp_path: Path, label_studio: Any, unique_project_name: str) -> Iterator[Path]:
    base = unique_project_name[:36]
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    by_id = client.projects.create(
        title=f"{base}-by-id",
        label_config='<View><Text name="prompt" value="$prompt"/>'
        '<TextArea name="answer" toName="prompt"/></View>',
    )
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
label_studio:
  url: {label_studio.url}
  api_key: ${{TEST_LS_KEY}}
trace_link: "http://tempo.example/trace/{{trace_id}}"
redaction:
  rules: [{{pattern: "ACME-[0-9]{{6}}", replacement: "[ACCOUNT]"}}]
pipeline: {{join_window_s: 0.2, batch_size: 300}}
routes:
  - name: support
    match: {{service: support-bot, model: "gpt-4o*"}}
    project: {{title: "{base}-support", shape: dialogue}}
  - name: anthropic
    match: {{provider: Anthropic}}
    project: {{id: {by_id.id}}}
  - name: no-embeddings
    match: {{operation: embeddings}}
    drop: true
  - name: half
    match: {{service: sampled-svc}}
    project: {{title: "{base}-half"}}
    sample: 0.5
  - name: limited
    match: {{service: limited-svc}}
    project: {{title: "{base}-limited"}}
    rate_limit: 5
  - name: rest
    match: {{}}
    project: {{title: "{base}-rest", shape: auto}}
"""
    )
    yield path


def tasks_by_project(client: LabelStudio, prefix: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for project in client.projects.list(title=prefix):
        if project.title.startswith(prefix):
            suffix = project.title[len(prefix) + 1 :]
            found[suffix] = list(client.tasks.list(project=project.id, fields="all"))
    return found


def test_routes_sampling_rate_limits_and_redaction(
    config: Path,
    label_studio: Any,
    unique_project_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_LS_KEY", label_studio.personal_access_token)
    support, sampled_svc, limited, other = (
        App(name, config) for name in ("support-bot", "sampled-svc", "limited-svc", "other-svc")
    )
    assert support.exporter.pipeline is other.exporter.pipeline

    support.call("Where is my parcel?", "On its way.")
    support.call("Refund please", "Done.", history=("Hi",))
    planted = " ".join(f"{kind}: {value}." for kind, value in SECRETS.items())
    support.call(f"My details: {planted}", f"Noted {SECRETS['email']}, card {SECRETS['card']}")
    support.call("Summarise", "Sure.", model="claude-sonnet-4", provider="anthropic")
    support.call("embed me", "", operation="embeddings", model="text-embedding-3-small")
    for i in range(1000):
        sampled_svc.call(f"sampled question {i}", "answer")
    for i in range(20):
        limited.call(f"limited question {i}", "answer")
    other.call("Just one prompt", "One answer.")
    other.call("Second turn", "Reply.", history=("First turn", "First reply"))

    for app in (support, sampled_svc, limited, other):
        app.flush()
    assert support.exporter.force_flush(120_000)
    stats = support.exporter.pipeline.stats()

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    base = unique_project_name[:36]
    found = tasks_by_project(client, base)
    expected_half = sum(sampled(t, 0.5) for t in sampled_svc.trace_ids)
    assert 430 <= expected_half <= 570  # binomial(1000, 0.5) within ±4.4 sd
    assert {name: len(tasks) for name, tasks in found.items()} == {
        "by-id": 1,
        "support": 3,
        "half": expected_half,
        "limited": 5,
        "rest": 2,
    }
    assert stats["route_drop_route"] == 1
    assert stats["route_sampled_out"] == 1000 - expected_half
    assert stats["route_rate_limited"] == 15

    # Every task of the sampled route is one whose trace id the rule keeps: the same decision
    # any replica would take.
    kept = {t for t in sampled_svc.trace_ids if sampled(t, 0.5)}
    assert {task.data["trace_id"] for task in found["half"]} == kept

    # Shapes: dialogue turns for support, auto picks prompt or dialogue per call.
    turns = [task.data["prompt"] for task in found["support"]]
    assert [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Refund please"},
    ] in turns
    rest = sorted(found["rest"], key=lambda task: task.id)
    assert (
        rest[0].data["prompt"] == "Just one prompt" and rest[0].data["dialogue"][0]["content"] == ""
    )
    assert rest[1].data["prompt"] == "" and len(rest[1].data["dialogue"]) == 3
    # The by-id project's own config: the prediction goes to its first TextArea.
    (by_id_task,) = found["by-id"]
    assert by_id_task.predictions[0].result[0]["from_name"] == "answer"
    # Trace link from the template, plain in the data.
    assert all(
        task.data["trace_url"] == f"http://tempo.example/trace/{task.data['trace_id']}"
        for task in found["support"]
    )

    # No planted secret reached Label Studio, in any field of any task.
    everything = json.dumps(
        [(t.data, [p.result for p in t.predictions]) for ts in found.values() for t in ts],
        ensure_ascii=False,
    )
    leaked = [kind for kind, value in SECRETS.items() if value in everything]
    assert leaked == []
    assert "[ACCOUNT]" in everything and "[REDACTED:email]" in everything

    for app in (support, sampled_svc, limited, other):
        app.provider.shutdown()
