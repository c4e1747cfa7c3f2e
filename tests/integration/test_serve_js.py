"""`serve` receives what the OpenTelemetry JS SDK sends: a Node.js app (tests/js) makes GenAI spans
the way a JS GenAI instrumentation does (semantic conventions >= 1.37) next to ordinary HTTP spans,
and the SDK's own OTLP/HTTP exporters send them, as JSON and as protobuf, to the service started
here on free loopback ports. The tasks are then read back from the real Label Studio."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio

from otel_labelstudio.config import Settings
from otel_labelstudio.receiver.service import Service

pytestmark = pytest.mark.labelstudio

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "js"
SENDER = JS_DIR / "send_genai_spans.mjs"
NODE_TIMEOUT_S = 120
FLUSH_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def node_sender() -> list[str]:
    """`node send_genai_spans.mjs`, its npm packages installed (npm ci) when missing or stale."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not on PATH: tests/js needs Node.js >= 20.6 and npm", pytrace=False)
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-node-deps.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"scripts/ensure-node-deps.sh failed ({done.returncode}):\n{done.stderr}",
            pytrace=False,
        )
    return [node, str(SENDER)]


@pytest.fixture
def service(label_studio: Any, unique_project_name: str) -> Iterator[Service]:
    settings = Settings.load(
        {
            "url": label_studio.url,
            "api_key": label_studio.personal_access_token,
            "project_name": unique_project_name,
            "mode": "auto",
            "grpc_endpoint": "127.0.0.1:0",
            "http_endpoint": "127.0.0.1:0",
            # The JS app sends no log-record events: nothing to wait for.
            "join_window_s": 0.0,
            "schedule_delay_s": 0.2,
        },
        environ={},
    )
    service = Service(settings)
    service.start()
    try:
        yield service
    finally:
        service.stop(10.0)


def send(node_sender: list[str], port: int, protocol: str, tag: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            *node_sender,
            "--endpoint",
            f"http://127.0.0.1:{port}/v1/traces",
            "--protocol",
            protocol,
            "--tag",
            tag,
        ],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
        cwd=JS_DIR,
    )
    assert done.returncode == 0, f"the JS sender failed ({done.returncode}):\n{done.stderr}"
    sent: dict[str, Any] = json.loads(done.stdout)
    return sent


def project_tasks(label_studio: Any, title: str) -> list[Any]:
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    projects = [p for p in client.projects.list(title=title) if p.title == title]
    assert len(projects) == 1, f"expected one project titled {title!r}, got {len(projects)}"
    return list(client.tasks.list(project=projects[0].id, fields="all"))


def predictions(task: Any) -> list[tuple[str, str, str]]:
    return [
        (p.model_version, r["from_name"], r["value"]["text"][0])
        for p in task.predictions
        for r in p.result
    ]


EMPTY_DIALOGUE = [{"role": "", "content": ""}]  # what the auto config's unused Paragraphs gets


@pytest.mark.parametrize("protocol", ["json", "protobuf"])
def test_js_sdk_genai_spans_become_tasks(
    label_studio: Any,
    node_sender: list[str],
    service: Service,
    unique_project_name: str,
    protocol: str,
) -> None:
    sent = send(node_sender, service.http.port, protocol, tag=f"js {protocol}")
    assert sent["protocol"] == protocol
    assert len(sent["genai"]) == 3
    assert len(sent["other"]) == 7  # server spans, the provider's HTTP calls, a health check
    assert service.pipeline.force_flush(FLUSH_TIMEOUT_S), service.pipeline.stats()

    tasks = project_tasks(label_studio, unique_project_name)
    # One task per LLM call; the ordinary HTTP spans made none.
    assert sorted(t.data["span_id"] for t in tasks) == sorted(s["span_id"] for s in sent["genai"])
    by_span = {t.data["span_id"]: t for t in tasks}
    for expected in sent["genai"]:
        task = by_span[expected["span_id"]]
        data = task.data
        facts = {
            key: data.get(key)
            for key in (
                "trace_id",
                "span_id",
                "service",
                "provider",
                "operation",
                "model",
                "input_tokens",
                "output_tokens",
                "latency_ms",
                "finish_reason",
            )
        }
        assert facts == {
            "trace_id": expected["trace_id"],
            "span_id": expected["span_id"],
            "service": "js-app",
            "provider": "openai",
            "operation": "chat",
            "model": expected["model"],
            "input_tokens": expected["input_tokens"],
            "output_tokens": expected["output_tokens"],
            "latency_ms": expected["latency_ms"],
            "finish_reason": expected["finish_reason"],
        }
        if expected["shape"] == "prompt":
            assert data["prompt"] == expected["prompt"]
            assert data["dialogue"] == EMPTY_DIALOGUE
        else:
            assert data["prompt"] == ""
            assert data["dialogue"] == expected["dialogue"]
        assert predictions(task) == [(expected["model"], "response", expected["response"])]
        assert "error" not in data

    stats = service.pipeline.stats()
    assert stats["interactions"] == 3
    assert stats["delivered"] == 3
    assert stats["pending"] == 0
