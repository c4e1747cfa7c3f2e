"""The real instrumentation packages, driven against fake backends, and the exact tasks their
telemetry becomes.

Each framework and mode runs in its own process (tests/integration/frameworks/drive_*.py, and
tests/js/drive_vercel_ai.mjs for the Vercel AI SDK): instrumentors patch libraries for the whole
process. The drivers write what the SDK exported as OTLP files per scenario; the tasks are built
from them by the pipeline's own stages (`frameworks/tasks.py`) and compared with the committed
expectations in `frameworks/expected/<framework>.json`, which also hold the package versions and
feed the README's compatibility matrix (`scripts/compat-matrix.py`).

After a deliberate change, `UPDATE_FRAMEWORK_EXPECTATIONS=1 pytest tests/integration/
test_frameworks.py` rewrites the expectations (each rewritten test is skipped, never passed);
review the diff. One scenario per framework also goes through the real Label Studio: `replay`
for the Python frameworks, `serve` over OTLP/HTTP for the Vercel AI SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "frameworks"
EXPECTED = HERE / "expected"
JS_DIR = REPO / "tests" / "js"
sys.path.insert(0, str(HERE))

import scenarios  # noqa: E402
from tasks import normalise, scenario_tasks, settings  # noqa: E402

from otel_labelstudio.config import Settings  # noqa: E402
from otel_labelstudio.receiver.replay import ReplayCount, records_from_files, replay  # noqa: E402
from otel_labelstudio.receiver.service import Service  # noqa: E402

UPDATE = os.environ.get("UPDATE_FRAMEWORK_EXPECTATIONS") == "1"
DRIVER_TIMEOUT_S = 300


@dataclass(frozen=True)
class Framework:
    name: str  # the expectation file's name
    driver: str
    mode: str
    package: str  # the instrumentation package, as the matrix names it
    description: str
    scenarios: tuple[str, ...] = scenarios.SCENARIOS
    # A lock file in frameworks/: the driver runs in a venv of its own built from it (versions
    # that cannot share the project's venv), cached under ~/.cache/otel-labelstudio/venvs.
    venv_lock: str = ""


_NO_N2 = tuple(name for name in scenarios.SCENARIOS if name != "n2")
FRAMEWORKS = (
    Framework(
        "openai-traceloop",
        "drive_openai.py",
        "traceloop",
        "opentelemetry-instrumentation-openai",
        "Traceloop, attributes (default)",
    ),
    Framework(
        "openai-traceloop-events",
        "drive_openai.py",
        "traceloop-events",
        "opentelemetry-instrumentation-openai",
        "Traceloop, `use_attributes=False` (log events)",
    ),
    Framework(
        "openai-v2-latest-span",
        "drive_openai.py",
        "v2-latest-span",
        "opentelemetry-instrumentation-openai-v2",
        "`gen_ai_latest_experimental`, `span_only`",
    ),
    Framework(
        "openai-v2-latest-event",
        "drive_openai.py",
        "v2-latest-event",
        "opentelemetry-instrumentation-openai-v2",
        "`gen_ai_latest_experimental`, `event_only`",
    ),
    Framework(
        "openai-v2-latest-both",
        "drive_openai.py",
        "v2-latest-both",
        "opentelemetry-instrumentation-openai-v2",
        "`gen_ai_latest_experimental`, `span_and_event`",
    ),
    Framework(
        "openai-v2-events",
        "drive_openai.py",
        "v2-events",
        "opentelemetry-instrumentation-openai-v2",
        "≤ 2.3b0 in its own venv: GenAI 1.28 log events, content capture on",
        venv_lock="openai-v2-events.lock.txt",
    ),
    Framework(
        "openai-v2-no-content",
        "drive_openai.py",
        "v2-no-content",
        "opentelemetry-instrumentation-openai-v2",
        "default (no content captured)",
    ),
    Framework(
        "langchain-traceloop",
        "drive_langchain.py",
        "traceloop",
        "opentelemetry-instrumentation-langchain",
        "Traceloop, attributes (default)",
        _NO_N2,
    ),
    Framework(
        "langchain-traceloop-events",
        "drive_langchain.py",
        "traceloop-events",
        "opentelemetry-instrumentation-langchain",
        "Traceloop, `use_attributes=False` (log events)",
        _NO_N2,
    ),
    Framework(
        "langchain-openinference",
        "drive_langchain.py",
        "openinference",
        "openinference-instrumentation-langchain",
        "OpenInference",
        _NO_N2,
    ),
    Framework(
        "pydantic-ai-v5",
        "drive_pydantic_ai.py",
        "v5",
        "pydantic-ai-slim",
        "`Agent.instrument_all()`, instrumentation version 5",
        _NO_N2,
    ),
)
VERCEL = Framework(
    "vercel-ai",
    "drive_vercel_ai.mjs",
    "telemetry",
    "ai (npm)",
    "`experimental_telemetry`, OTLP/HTTP to `serve`",
    _NO_N2,
)


def _driver_python(framework: Framework) -> str:
    if not framework.venv_lock:
        return sys.executable
    lock = HERE / framework.venv_lock
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    cache = Path(
        os.environ.get("OTEL_LABELSTUDIO_CACHE") or Path.home() / ".cache/otel-labelstudio"
    )
    venv = cache / "venvs" / f"{lock.name.removesuffix('.lock.txt')}-{digest}"
    python = venv / "bin" / "python"
    if python.exists():
        return str(python)
    uv = shutil.which("uv") or str(cache / "tools" / "bin" / "uv")
    staging = venv.with_name(venv.name + f".staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for command in (
        [uv, "venv", "--quiet", "--python", "3.11", str(staging)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(staging / "bin" / "python"),
            "-r",
            str(lock),
        ],
    ):
        subprocess.run(command, check=True, timeout=DRIVER_TIMEOUT_S)
    staging.replace(venv)  # venvs made by uv hold no absolute path to themselves in scripts we use
    return str(python)


def _run_driver(framework: Framework, out_dir: Path) -> dict[str, str]:
    done = subprocess.run(
        [_driver_python(framework), str(HERE / framework.driver), framework.mode, str(out_dir)],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, f"{framework.driver} {framework.mode} failed:\n{done.stderr}"
    versions: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return versions


@pytest.fixture(scope="session")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`captured(framework)` → (OTLP files directory, package versions); each driver runs once."""
    runs: dict[str, tuple[Path, dict[str, str]]] = {}

    def get(framework: Framework) -> tuple[Path, dict[str, str]]:
        if framework.name not in runs:
            out_dir = tmp_path_factory.mktemp(framework.name)
            runs[framework.name] = (out_dir, _run_driver(framework, out_dir))
        return runs[framework.name]

    yield get


def _expected(framework: Framework) -> dict[str, Any]:
    path = EXPECTED / f"{framework.name}.json"
    if not path.exists():
        return {}
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _write_expected(
    framework: Framework, versions: dict[str, str], name: str, tasks: list[dict[str, Any]]
) -> None:
    EXPECTED.mkdir(exist_ok=True)
    document = _expected(framework) or {"scenarios": {}}
    document.update(
        {
            "framework": framework.name,
            "package": framework.package,
            "mode": framework.description,
            "versions": versions,
        }
    )
    document["scenarios"][name] = tasks
    document["scenarios"] = {
        k: document["scenarios"][k] for k in scenarios.SCENARIOS if k in document["scenarios"]
    }
    (EXPECTED / f"{framework.name}.json").write_text(
        json.dumps(document, indent=1, ensure_ascii=False, sort_keys=False) + "\n",
        encoding="utf-8",
    )


def _check(
    framework: Framework, versions: dict[str, str], name: str, tasks: list[dict[str, Any]]
) -> None:
    if UPDATE:
        _write_expected(framework, versions, name, tasks)
        pytest.skip(f"expectation written: {framework.name} / {name}")
    expected = _expected(framework)
    assert expected, (
        f"no expectations for {framework.name}: run with UPDATE_FRAMEWORK_EXPECTATIONS=1"
    )
    # The versions the expectations (and the README matrix) were made with are the ones tested.
    assert expected["versions"] == versions
    assert tasks == expected["scenarios"][name]


@pytest.mark.parametrize(
    ("framework", "name"),
    [pytest.param(f, n, id=f"{f.name}-{n}") for f in FRAMEWORKS for n in f.scenarios],
)
def test_instrumented_framework_makes_the_expected_tasks(
    captured: Any, framework: Framework, name: str
) -> None:
    directory, versions = captured(framework)
    tasks = scenario_tasks(directory, name)
    assert tasks, f"{framework.name} / {name} made no task"
    _check(framework, versions, name, tasks)


# --- through the real Label Studio ------------------------------------------------------------


def _from_label_studio(task: Any) -> dict[str, Any]:
    """A task read back from Label Studio, in the shape we import (data + predictions)."""
    found: dict[str, Any] = {"data": dict(task.data)}
    predictions = [
        {
            "model_version": prediction.model_version,
            "result": [
                {key: result[key] for key in ("from_name", "to_name", "type", "value")}
                for result in prediction.result
            ],
        }
        for prediction in task.predictions
    ]
    if predictions:
        found["predictions"] = predictions
    return normalise(found)


def _project_tasks(label_studio: Any, title: str) -> list[Any]:
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.legacy_token)
    projects = [p for p in client.projects.list(title=title) if p.title == title]
    assert len(projects) == 1, f"expected one project titled {title!r}, got {len(projects)}"
    return list(client.tasks.list(project=projects[0].id, fields="all"))


def _canonical(tasks: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(task, sort_keys=True, ensure_ascii=False) for task in tasks)


def test_replay_into_label_studio_gives_the_same_tasks(
    label_studio: Any, captured: Any, unique_project_name: str
) -> None:
    """The tool round trip of every Python framework, through `replay` into the real server."""
    paths: list[Path] = []
    expected: list[dict[str, Any]] = []
    for framework in FRAMEWORKS:
        directory, _ = captured(framework)
        paths += [directory / "tool_round_trip.traces.pb", directory / "tool_round_trip.logs.pb"]
        expected += [found["task"] for found in scenario_tasks(directory, "tool_round_trip")]
    config = settings(
        url=label_studio.url,
        api_key=label_studio.personal_access_token,
        routes=[
            {
                "match": {},
                "include_without_content": True,
                "project": {"title": unique_project_name, "shape": "auto"},
            }
        ],
    )
    delivered, stats = replay(config, records_from_files(paths, None, ReplayCount()), timeout_s=120)
    assert delivered, stats
    tasks = [_from_label_studio(task) for task in _project_tasks(label_studio, unique_project_name)]
    assert _canonical(tasks) == _canonical(expected)


class _Copy(BaseHTTPRequestHandler):
    """Keeps the OTLP/HTTP bodies it is sent (the Node exporter may send them chunked)."""

    bodies: list[bytes]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        else:
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def copy_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Copy)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_vercel_ai_sdk_through_serve(
    label_studio: Any,
    copy_server: ThreadingHTTPServer,
    unique_project_name: str,
    tmp_path: Path,
) -> None:
    """The AI SDK's own telemetry, exported by the OpenTelemetry JS SDK over OTLP/HTTP to `serve`
    (and, as a copy, to a local sink that the in-process stages read): both give exactly the
    expected tasks."""
    node = shutil.which("node")
    assert node is not None, "Node.js is not on PATH: tests/js needs Node.js >= 20.6 and npm"
    deps = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-node-deps.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert deps.returncode == 0, deps.stderr
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps(
            {
                key: getattr(scenarios, key)
                for key in (
                    "SINGLE",
                    "SYSTEM",
                    "SYSTEM_USER",
                    "TURNS",
                    "TOOL_QUESTION",
                    "TOOL_RESULT",
                    "STREAM",
                    "FAIL",
                    "NON_ASCII",
                    "BIG",
                )
            }
        ),
        encoding="utf-8",
    )
    service = Service(
        Settings.load(
            {
                "url": label_studio.url,
                "api_key": label_studio.personal_access_token,
                "routes": [
                    {
                        "match": {},
                        "include_without_content": True,
                        "project": {"title": unique_project_name, "shape": "auto"},
                    }
                ],
                "grpc_endpoint": "127.0.0.1:0",
                "http_endpoint": "127.0.0.1:0",
                "join_window_s": 0.0,
                "schedule_delay_s": 0.2,
            },
            environ={},
        )
    )
    service.start()
    try:
        done = subprocess.run(
            [
                node,
                str(JS_DIR / VERCEL.driver),
                "--endpoint",
                f"http://127.0.0.1:{service.http.port}/v1/traces",
                "--copy-endpoint",
                f"http://127.0.0.1:{copy_server.server_address[1]}/v1/traces",
                "--texts",
                str(texts),
            ],
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT_S,
            check=False,
            cwd=JS_DIR,
        )
        assert done.returncode == 0, done.stderr
        assert service.pipeline.force_flush(60), service.pipeline.stats()
    finally:
        service.stop(10.0)
    sent = json.loads(done.stdout)
    by_trace = {trace_id: name for name, trace_id in sent["scenarios"].items()}

    # In-process: the copy, as OTLP files per scenario, through the same stages as the others.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    per_scenario: dict[str, ExportTraceServiceRequest] = {}
    for body in copy_server.bodies:  # type: ignore[attr-defined]
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    name = by_trace[span.trace_id.hex()]
                    target = per_scenario.setdefault(name, ExportTraceServiceRequest())
                    copy = target.resource_spans.add()
                    copy.resource.CopyFrom(resource_spans.resource)
                    copy.scope_spans.add(scope=scope_spans.scope).spans.append(span)
    directory = tmp_path / "otlp"
    directory.mkdir()
    for name, request in per_scenario.items():
        (directory / f"{name}.traces.pb").write_bytes(request.SerializeToString())
    versions = {"ai": sent["ai"]}
    in_label_studio: dict[str, list[dict[str, Any]]] = {}
    # Tasks carry their trace id; the scenario is found from it before it is normalised away.
    for task in _project_tasks(label_studio, unique_project_name):
        name = by_trace[task.data["trace_id"]]
        in_label_studio.setdefault(name, []).append(_from_label_studio(task))
    failures = []
    for name in VERCEL.scenarios:
        tasks = scenario_tasks(directory, name)
        assert _canonical(in_label_studio.get(name, [])) == _canonical(
            [found["task"] for found in tasks]
        ), name
        if UPDATE:
            _write_expected(VERCEL, versions, name, tasks)
            continue
        try:
            _check(VERCEL, versions, name, tasks)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    if UPDATE:
        pytest.skip("expectations written: vercel-ai")
    assert not failures, "\n".join(failures)
