"""`otel-labelstudio serve --config FILE` as a process: ready, metrics, and SIGTERM drains what
it accepted into the real Label Studio before it exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from label_studio_sdk import LabelStudio
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

pytestmark = pytest.mark.labelstudio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_process_drains_on_sigterm(
    label_studio: Any, unique_project_name: str, tmp_path: Path
) -> None:
    grpc_port, http_port = free_port(), free_port()
    token = "receiver-token-123456"
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"""
label_studio: {{url: "{label_studio.url}", api_key: "${{LS_KEY}}"}}
project: {{title: "{unique_project_name}", shape: dialogue}}
receiver:
  grpc_endpoint: 127.0.0.1:{grpc_port}
  http_endpoint: 127.0.0.1:{http_port}
  auth_token: "${{RECEIVER_TOKEN}}"
pipeline: {{join_window_s: 30}}
"""
    )
    cli = Path(sys.executable).with_name("otel-labelstudio")
    env = {
        "PATH": str(Path(sys.executable).parent),
        "OTEL_LABELSTUDIO_SPOOL_DIR": os.environ["OTEL_LABELSTUDIO_SPOOL_DIR"],
        "LS_KEY": label_studio.personal_access_token,
        "RECEIVER_TOKEN": token,
    }
    process = subprocess.Popen(
        [str(cli), "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("serve did not become ready")

        exporter = OTLPSpanExporter(
            endpoint=f"{base}/v1/traces", headers={"authorization": f"Bearer {token}"}
        )
        provider = TracerProvider(resource=Resource.create({"service.name": "drained-app"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("app")
        for i in range(5):
            with tracer.start_as_current_span("chat") as span:
                span.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": f"q{i}"}]}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [{"role": "assistant", "parts": [{"type": "text", "content": "a"}]}]
                        ),
                    }
                )
        provider.shutdown()
        # Accepted, but held by the 30 s join window: only a proper drain delivers them now.
        unauthorized = httpx.get(f"{base}/metrics", timeout=5)
        metrics = httpx.get(
            f"{base}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=5
        )
        assert unauthorized.status_code == 401
        assert 'otel_labelstudio_receiver_items_total{outcome="accepted"' in metrics.text

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    assert token not in output and label_studio.personal_access_token not in output

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    (project,) = [p for p in client.projects.list(title=unique_project_name)]
    tasks = list(client.tasks.list(project=project.id))
    assert sorted(t.data["prompt"][0]["content"] for t in tasks) == [f"q{i}" for i in range(5)]
