"""What the fault tests share: OTLP requests with known span ids, a sender that retries like an
OTLP exporter, `serve` as a process, a fault-injecting proxy in front of Label Studio, and an
exact count of what Label Studio holds."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from label_studio_sdk import LabelStudio as Sdk
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

TRACE_PREFIX = bytes.fromhex("feedface")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def span_id_of(i: int) -> str:
    return f"{i + 1:016x}"


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def interactions_request(
    first: int,
    count: int,
    *,
    service: str = "fault-app",
    without_model: frozenset[int] = frozenset(),
) -> bytes:
    """An OTLP/protobuf trace request with `count` GenAI chat spans, numbered from `first`."""
    spans = []
    for i in range(first, first + count):
        attributes = [
            _attribute("gen_ai.operation.name", "chat"),
            _attribute("gen_ai.provider.name", "openai"),
            _attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"q{i}"}]}]),
            ),
            _attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": f"a{i}"}]}]
                ),
            ),
        ]
        attributes.append(_attribute("gen_ai.request.model", "fake-model"))
        spans.append(
            Span(
                trace_id=TRACE_PREFIX + (i + 1).to_bytes(12, "big"),
                span_id=(i + 1).to_bytes(8, "big"),
                name="chat fake-model",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_700_000_000_000_000_000 + i,
                end_time_unix_nano=1_700_000_000_500_000_000 + i,
                attributes=attributes,
            )
        )
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_attribute("service.name", service)]),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return request.SerializeToString()


class Sender:
    """Posts requests to OTLP/HTTP and, like an OTLP exporter, sends a request again until it is
    acknowledged: after 429/503 (waiting Retry-After) and after a broken connection."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/v1/traces"
        self.acknowledged = 0
        self.retries: Counter[str] = Counter()
        self._client = httpx.Client(timeout=10)

    def send(self, body: bytes, deadline_s: float = 300) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            try:
                response = self._client.post(
                    self.url, content=body, headers={"content-type": "application/x-protobuf"}
                )
            except httpx.TransportError:
                self.retries["connection"] += 1
                time.sleep(0.2)
                continue
            if response.status_code == 200:
                self.acknowledged += 1
                return
            if response.status_code in (429, 503):
                self.retries[str(response.status_code)] += 1
                time.sleep(min(2.0, float(response.headers.get("retry-after", "1"))))
                continue
            raise AssertionError(f"unexpected answer {response.status_code}: {response.text}")
        raise AssertionError("the request was never acknowledged")

    def close(self) -> None:
        self._client.close()


def span_ids_in(url: str, token: str, project_id: int) -> Counter[str]:
    """How many tasks Label Studio holds per span id in the project."""
    client = Sdk(base_url=url, api_key=token)
    found: Counter[str] = Counter()
    for task in client.tasks.list(project=project_id, page_size=500, include="id,data"):
        found[str((task.data or {}).get("span_id"))] += 1
    return found


def project_id_titled(url: str, token: str, title: str) -> int | None:
    client = Sdk(base_url=url, api_key=token)
    ids = [p.id for p in client.projects.list(title=title) if p.title == title]
    return min(ids) if ids else None  # type: ignore[type-var]


def wait_for_count(
    url: str, token: str, title: str, expected: int, timeout_s: float
) -> Counter[str]:
    """Poll Label Studio until the project holds `expected` tasks (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    found: Counter[str] = Counter()
    while time.monotonic() < deadline:
        project_id = project_id_titled(url, token, title)
        if project_id is not None:
            found = span_ids_in(url, token, project_id)
            if sum(found.values()) >= expected:
                time.sleep(2)  # anything more (a duplicate) would show now
                return span_ids_in(url, token, project_id)
        time.sleep(1)
    return found


class ServeProcess:
    """`otel-labelstudio serve --config FILE` as a child process, killable and restartable."""

    def __init__(self, config: Path, env: dict[str, str], http_port: int) -> None:
        self.config = config
        self.env = env
        self.base = f"http://127.0.0.1:{http_port}"
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> None:
        cli = Path(sys.executable).with_name("otel-labelstudio")
        self.process = subprocess.Popen(
            [str(cli), "serve", "--config", str(self.config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("serve did not become ready:\n" + "".join(self.output[-40:]))

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(90)


class FaultyProxy:
    """HTTP proxy to Label Studio that, on task imports, follows a script of faults:
    "500" (refused before Label Studio sees it), "applied-502" (Label Studio applied it, the
    answer is lost), "slow" (applied, answered after the client gave up), "ok". A batch holding
    the `poison` span id is answered 400 the way Label Studio answers a task that does not fit
    the project, without reaching it."""

    def __init__(self, upstream: str, script: Callable[[int], str], poison: str = "") -> None:
        self.upstream = upstream.rstrip("/")
        self.script = script
        self.poison = poison
        self.imports = 0
        self.faults: Counter[str] = Counter()
        self.slow_s = 3.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = "ok"
                if self.command == "POST" and self.path.split("?")[0].endswith("/import"):
                    proxy.imports += 1
                    fault = proxy.script(proxy.imports)
                    proxy.faults[fault] += 1
                if fault == "500":
                    self._answer(500, b'{"detail": "injected failure"}')
                    return
                if proxy.poison and proxy.poison.encode() in body:
                    proxy.faults["poison"] += 1
                    self._answer(
                        400,
                        b'{"validation_errors": {"non_field_errors": ["poison task: data does'
                        b' not fit the label config"]}}',
                    )
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                with httpx.Client(timeout=60) as client:
                    upstream = client.request(
                        self.command, proxy.upstream + self.path, content=body, headers=headers
                    )
                if fault == "applied-502":
                    self._answer(502, b'{"detail": "injected: bad gateway"}')
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_s)
                self._answer(upstream.status_code, upstream.content)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (timeout)
                    self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(0, total, size):
        yield first, min(size, total - first)
